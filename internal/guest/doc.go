// Package guest is the contract between strata's host and the init program
// that runs inside an image microVM, plus the host-side helpers that prepare
// and talk to such a VM. The init program itself is package
// internal/guest/initproc, built as cmd/strata-guest.
//
// # Terms
//
//   - Image microVM: a QEMU microvm machine that boots strata's guest kernel
//     (Debian's cloud kernel, see Kernel) with strata's initramfs, and runs an
//     OCI image's entrypoint from a root filesystem disk (MakeRootDisk).
//   - Guest init: strata-guest, PID 1 of the VM. It loads the virtio modules
//     (Modules), reads its Config from ConfigPath, mounts the root disk, sets
//     up the network, runs the entrypoint chrooted into the root, serves the
//     exec agent, and powers the VM off when the entrypoint ends, after
//     writing an ExitReport.
//   - Base initramfs: the gzip'd newc cpio archive with the guest init and the
//     kernel modules it loads (BuildInitramfs). It depends only on the kernel
//     and the init binary, so one file serves every VM of a host.
//   - Config archive: a second, small archive holding one VM's Config
//     (ConfigArchive). The host appends it to the base initramfs; the kernel
//     unpacks both, one after the other.
//   - Ports: two virtio-serial ports, found in the guest by name. ExitPort
//     receives the ExitReport; AgentPort carries the exec agent.
//   - Exec agent: a yamux session over AgentPort, the guest the server.
//     Each stream runs one program in the root filesystem; see agent.go for
//     the handshake and the framing, and AgentClient for the host's side.
//   - Node VM: a VM whose Config has Mode ModeNode. It has no entrypoint and
//     no root disk; it runs OCI containers from read-only image disks with
//     crun (container tier) or runsc (sandbox tier), driven by NodeRequest operations on the agent's streams
//     (node.go, AgentClient.Node and ExecIn). The runtimes are on a
//     read-only tools disk (NodeToolsDisk, Config.ToolsDisk) that the guest
//     mounts at ToolsMount, beside a node initramfs without them
//     (NodeBaseInitramfs); NodeInitramfs (BuildNodeInitramfs) carries them
//     in the initramfs itself, unpacked into the guest's memory.
//
// docs/guest.md describes the boot sequence and the measured boot times.
package guest
