// Package qemu is strata's driver for the vm tier: every instance is one QEMU
// process, in a session of its own so that it outlives the daemon.
//
// # Sources
//
// An instance boots one of:
//
//   - an OCI image (InstanceSpec.Image, no VM source): a microVM (-M microvm)
//     with strata's guest kernel and an initramfs holding strata's guest init
//     (package guest). The image's root filesystem is copied once into an
//     ext4 disk, cached by the image's chain ID under StateDir/images; each
//     instance writes to a qcow2 overlay of it. The init runs the image's
//     entrypoint with its environment; the entrypoint's exit code is the
//     instance's (the guest reports it on a virtio-serial port backed by a
//     file, so the report outlives the daemon). `exec` goes through the
//     init's agent on a second port.
//   - a VM source (InstanceSpec.VM): a kernel with optional initrd and
//     cmdline, a disk image, or a kernel booting a disk; a standard PC (-M
//     q35) with virtio PCI devices, or the disk bus (sata, scsi, ide) and NIC
//     model (e1000, e1000e) the source asks for, under SeaBIOS or, with
//     firmware uefi, OVMF (a private copy of its variable store per
//     instance). The disk is never written: the instance gets a qcow2
//     overlay. A raw or qcow2 disk is overlaid as it is; a vmdk, vhd, vhdx or
//     ova disk is converted to qcow2 once (qemu-img convert -p, its progress
//     in the instance's log), cached under StateDir/disks by the source's
//     path, size and modification time; an OVA is unpacked with package
//     extract first and its OVF descriptor's first disk boots. An optional
//     cloud-init NoCloud seed is attached as a second disk labelled "cidata".
//   - a node VM (StartNode, not a runtime.InstanceSpec): strata's guest
//     kernel on q35 with an initramfs the caller supplies, an optional root
//     disk, the agent, exit and console ports of an image VM, and NodePorts
//     empty PCIe root ports. AttachNIC and AttachDisk plug a virtio-net-pci
//     NIC (on a tap handed over QMP getfd) or a read-only virtio-blk-pci disk
//     into the lowest free port; DetachNIC and DetachDisk unplug them
//     (device_del, waiting for DEVICE_DELETED, then the back end). What each
//     port holds is kept in StateDir/<ID>/devices.json, so a new Driver value
//     detaches what an earlier one attached.
//
// # State
//
// Each instance has a directory StateDir/<ID> holding instance.json (the
// record: spec, QEMU's PID and its start time, and the exit once known), the
// QMP, agent and console sockets, the exit report, the disk overlay and the
// initrd. The record is the truth: a new Driver value (a restarted daemon)
// reads the directory, checks that each recorded PID is still the same QEMU
// process (start time and command line), and takes the instance over; it
// never starts a second QEMU for an instance.
//
// # Exit codes
//
// An image VM's exit code is its entrypoint's, as the guest reported it. A
// QEMU process that ended without a report was killed (or crashed): its code
// is 128+N for signal N when the driver saw it end, 137 otherwise. A VM
// source's exit code is QEMU's (0 when the guest powered off).
//
// # Acceleration
//
// A device that opens is no proof that KVM runs guests (some hosts have a
// /dev/kvm whose CPU cannot run one: QEMU aborts setting MSRs, or the guest
// hangs). So New boots a probe guest under KVM, with the CPU model VMs use
// (-cpu host): a 64 KiB firmware whose reset vector writes a value to QEMU's
// debug-exit port. KVM is used when QEMU exits with that value within
// ProbeTimeout, TCG otherwise (Config.Accel "auto"); the reason is in the
// driver's check and logged once. The outcome can be cached (Config.ProbeCache)
// for the boot of the host, keyed by the boot ID, kernel, QEMU program and CPU;
// package kvmprobe runs the probe. An
// instance records its accelerator and keeps it; the Status.Message of a
// running instance says which.
// Under TCG a microVM's kernel needs the TSC frequency on its command line
// (package guest computes it).
package qemu
