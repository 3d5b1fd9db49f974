// Package nodevm is the runtime driver that runs container-tier and
// sandbox-tier instances as OCI containers inside node VMs: VMs strata owns
// that carry the instances of one isolation class, so that a class's
// containers share a kernel with each other and with no other class, nor
// with the host.
//
// What runs where:
//
//   - The host: the qemu driver boots each node VM (qemu.Driver.StartNode, q35
//     with hot-plug ports) from strata's guest kernel, the node initramfs
//     without the runtimes (guest.NodeBaseInitramfs: strata-guest in node
//     mode) and the tools disk (guest.NodeToolsDisk: crun, and runsc when the
//     driver serves the sandbox tier; read-only, one file for every node VM),
//     so that the runtimes are not unpacked into the guest's memory. Each node
//     VM carries one class, and is used once its guest agent answers (within
//     Config.BootTimeout, by default the qemu driver's ReadyTimeout; a node
//     VM that does not come up is removed, and the error quotes its
//     console); the class is the instance's LabelIsolationClass label,
//     or DefaultClass. The qemu driver's image store gives each image's root
//     filesystem as an ext4 disk (qemu.Driver.ImageDisk, made once per
//     image), plugged read-only into a node VM once (its serial is
//     "img-" and the image's chain ID).
//   - The guest: strata-guest mounts the image disk, gives each container an
//     overlayfs on it and runs it with crun (container tier) or runsc
//     (sandbox tier), with the instance's command (or the image's entrypoint
//     and cmd), environment, working directory, user, extra capabilities and
//     CPU and memory limits (the CPU limit set once the container's process
//     runs, so that it does not throttle the runtime's setup); the container is
//     named like the instance.
//
// Network: an instance with InstanceSpec.VMNet (Capabilities.VMNet, when
// Config.OpenTap is set) gets a NIC of its own. Start opens the tap the
// network manager made for it, hot-plugs it into the node VM with the
// instance's MAC (qemu.Driver.AttachNIC, device ID NICID) and passes the
// address, gateway and name servers in the guest's create; the guest moves
// the NIC into the container's network namespace as eth0 (runsc:
// --network=sandbox). The tap's port guard lets only the instance's MAC
// and address send, so a node VM sends only from addresses strata gave its
// instances. Remove unplugs the NIC after the guest has removed the
// container; a failed Start unplugs it again.
//
// Placement: a Start puts the instance into a running node VM of its class
// where it fits, with the rules of internal/place that strata plan packs a
// fleet by: its requests (CPUMilli, MemoryBytes; a sandbox also
// Overheads.Sandbox) against the node VM's shape less Overheads.NodeReserved
// less what the instances in it take, and a free hot-plug port for its
// image's disk unless the VM holds it; of the node VMs it fits, the one it
// fills best (place.BestNode). When it fits none, a new node VM of the class
// boots: VMIDAt(class, i) with the lowest index i no running node VM of the
// class has, of the cheapest of Config.Shapes that holds the instance
// (place.CheapestShape), else Config.NodeShape. An instance no shape holds
// is refused (ErrInvalid). Node VMs keep their shape in their labels
// (LabelShape), and Nodes reports it with the instances and their requests;
// LabelOwner names the state directory whose driver booted the node VM,
// and a driver places into, lists and removes only its own.
//
// A node VM that holds no instance (no record names it, no Start is putting
// one into it) for Config.EmptyGrace is stopped and removed, with its console
// log and marks; a Start of its class meanwhile reuses it. Each Driver value
// watches for empty node VMs, so a new one (after a restart) removes those
// it finds empty after a whole grace.
//
// The driver talks to the guest's node agent (guest.AgentClient.Node and
// ExecIn). Each instance's record (its class, node VM and log offset) is
// kept in StateDir/instances/<id>.json, so a new Driver value takes over
// what an earlier one started. A running instance is watched by one Driver
// value at a time (a flock on StateDir/instances/<id>.lock): it copies the
// container's output from the guest to InstanceSpec.LogPath (appended, as
// the other drivers write it), waits for the exit code (the guest's wait)
// and reports it as an exit event. Status asks the guest. Status.PID is the
// PID of the node VM's QEMU process, the host process that carries the
// container.
//
// Usage and pause: Stats asks the guest (guest.NodeStats). A crun container's
// CPU time and memory are those of its cgroup in the guest; runsc keeps no
// cgroup there, so a sandbox's are gVisor's own accounting (runsc events
// --stats: the CPU time of the tasks inside the sandbox and the memory the
// sandbox holds for them, not what the runsc processes cost the guest).
// Pause and Resume are the runtime's pause and resume in the guest (crun
// freezes the cgroup, runsc its tasks); a paused instance reads as running.
// SaveRootfs has the guest write the upper directory of a crun container's
// overlayfs as a layer (guest.NodeRootfs), and for a sandbox what runsc
// writes of its own overlay (`runsc tar rootfs-upper`), its overlay
// whiteouts turned into the layer's. A Start with InstanceSpec.RootfsLayer sends the
// layer into the created container before it starts (guest.NodeLayer).
//
// Runtimes: crun runs the container tier. Under emulation (TCG) most of a
// container's start was runc's own Go start-up, run instruction by
// instruction several times per start (run, then runc init executing
// itself); crun is C and starts in a fraction of that. Config.ContainerRuntime
// runc (with guest.NodeTools.Runc) keeps runc selectable for one release, to
// compare the two (BenchmarkStartTrue); the daemon never sets it.
//
// Limits: the guest's cgroups enforce CPUMilli and MemoryBytes for both
// tiers (crun's container processes, runsc's whole sandbox, in
// /strata/<id>/ctr) and the guest reports an OOM kill (Status.OOMKilled, an
// OOM event before the exit event), so Capabilities claims Limits.
//
// Mounts: each node VM boots with its RAM in a shared memfd and gets, at
// the first Start of an instance with InstanceSpec.Mounts, one share: the
// directory StateDir/shares/<vm>, bind-mounted onto itself as a shared
// mount and plugged in with one virtiofsd (qemu.Driver.AttachFS, tag
// "strata-mounts"). Each mount of an instance is a bind mount of its
// HostPath at <share>/<instance>/<i> (read-only on the host too when the
// Mount is), which propagates into virtiofsd's mount namespace; the guest
// mounts the tag once and bind-mounts each <instance>/<i> into the container
// at its Path, read-only where asked. The data stays in the host directory.
// Remove (and a failed Start) unmounts the instance's binds; the share, its
// virtiofsd and its socket go with the node VM. Capabilities claims Mounts
// when the driver runs as root and the host has virtiofsd.
//
// Not yet: network namespaces on the host (NetNS) and every capability at
// once (ALL) are refused (ErrUnsupported). Close leaves the node VMs running.
package nodevm
