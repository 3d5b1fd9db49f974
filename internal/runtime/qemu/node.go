package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
)

// NodePorts is how many PCIe root ports a node VM has for devices plugged in
// while it runs (one port per NIC or disk) when its NodeSpec names no other
// count; MaxNodePorts is the most it may have.
const (
	NodePorts    = 32
	MaxNodePorts = 64
)

// sourceNode is a node VM: strata's guest kernel on q35 with an initramfs the
// caller supplies, and root ports for devices plugged in while it runs.
const sourceNode source = "node"

// LabelNodeVM marks a node VM among the driver's instances (List, Status):
// its value is "true", and its Status has no Workload.
const LabelNodeVM = runtime.LabelDriverPrefix + "node-vm"

// NodeSpec describes a node VM.
type NodeSpec struct {
	// ID names the VM, as an instance ID does (runtime.ValidID); its state
	// lives in StateDir/ID like any instance's.
	ID string
	// CPUMilli and MemoryBytes size the VM (defaults: 1 CPU and
	// DefaultMemoryBytes).
	CPUMilli    int64
	MemoryBytes int64
	// Initrd is the initramfs the guest kernel boots (an absolute path); the
	// driver copies it into the VM's directory, so the caller may remove it.
	Initrd string
	// RootDisk, when set, is a disk present from boot, the guest's first
	// virtio disk (/dev/vda), writable; RootDiskFormat is "raw" (the
	// default) or "qcow2". The driver never creates nor removes it.
	RootDisk       string
	RootDiskFormat string
	// Disks are read-only disks present from boot (raw or qcow2, as
	// AttachDisk's), after RootDisk, each with its ID as its serial number.
	// They take no hot-plug port, and stay until the VM ends. The driver
	// never creates nor removes them.
	Disks []Disk
	// Ports is the number of PCIe root ports, 1 to MaxNodePorts (0:
	// NodePorts). The guest's kernel enumerates each at boot, so fewer boot
	// faster.
	Ports int
	// Cmdline is added to the kernel command line (NodeCmdline).
	Cmdline string
	// SharedMemory backs the guest's RAM with a shared memfd (share=on),
	// which a directory shared with virtiofs needs (AttachFS): virtiofsd
	// reads and writes the guest's buffers in place.
	SharedMemory bool
	// LogPath receives the serial console, as an instance's log.
	LogPath string
	Labels  map[string]string
}

// NodeCmdline is the kernel command line of node VMs before NodeSpec.Cmdline:
// the console on the first serial port and panic=-1 (a panic ends QEMU, run
// with -no-reboot). PCI stays on (the devices and the hot-plug ports are PCI)
// and q35's clocks let the kernel calibrate its TSC, so it needs no TSC
// frequency under TCG, unlike a microvm.
const NodeCmdline = "console=ttyS0 quiet panic=-1"

// StartNode boots a node VM on q35 with strata's guest kernel, spec.Initrd
// and spec.Ports (NodePorts by default) empty PCIe root ports, with the agent, exit and console
// ports image VMs have. It returns once QEMU's monitor answers; the guest's
// agent answers a moment later (Exec waits for it). Stop, Kill, Remove,
// Status, Exec and Stats work on it as on any instance, and a new Driver
// value takes it over.
func (d *Driver) StartNode(ctx context.Context, spec NodeSpec) (_ runtime.Status, err error) {
	if err := d.check(); err != nil {
		return runtime.Status{}, err
	}
	if !runtime.ValidID(spec.ID) {
		return runtime.Status{}, fmt.Errorf("%w: node VM ID %q: use lower-case letters, digits, '-' and '.', at most %d characters", runtime.ErrInvalid, spec.ID, runtime.MaxIDLength)
	}
	if d.choice.Refused != "" {
		return runtime.Status{}, fmt.Errorf("%w: node VM %q: %s", runtime.ErrUnsupported, spec.ID, d.choice.Refused)
	}
	inst := runtime.InstanceSpec{ID: spec.ID, Tier: v1alpha1.TierVM, CPUMilli: spec.CPUMilli, MemoryBytes: spec.MemoryBytes, LogPath: spec.LogPath}
	if err := checkMemory(inst); err != nil {
		return runtime.Status{}, err
	}
	if err := regularFile(spec.Initrd); err != nil {
		return runtime.Status{}, fmt.Errorf("%w: node VM %q: initrd: %w", runtime.ErrInvalid, spec.ID, err)
	}
	if spec.Ports == 0 {
		spec.Ports = NodePorts
	}
	if spec.Ports < 0 || spec.Ports > MaxNodePorts {
		return runtime.Status{}, fmt.Errorf("%w: node VM %q: %d hot-plug ports: give 1 to %d, or 0 for %d", runtime.ErrInvalid, spec.ID, spec.Ports, MaxNodePorts, NodePorts)
	}
	format := spec.RootDiskFormat
	if format == "" {
		format = "raw"
	}
	if spec.RootDisk != "" {
		if format != "raw" && format != "qcow2" {
			return runtime.Status{}, fmt.Errorf("%w: node VM %q: root disk format %q: want raw or qcow2", runtime.ErrInvalid, spec.ID, format)
		}
		if err := regularFile(spec.RootDisk); err != nil {
			return runtime.Status{}, fmt.Errorf("%w: node VM %q: root disk: %w", runtime.ErrInvalid, spec.ID, err)
		}
	}
	for i := range spec.Disks {
		disk := &spec.Disks[i]
		if !runtime.ValidID(disk.ID) || len(disk.ID) > maxDeviceID {
			return runtime.Status{}, fmt.Errorf("%w: node VM %q: disks[%d]: ID %q: use lower-case letters, digits, '-' and '.', at most %d characters", runtime.ErrInvalid, spec.ID, i, disk.ID, maxDeviceID)
		}
		if disk.Format == "" {
			disk.Format = "raw"
		}
		if disk.Format != "raw" && disk.Format != "qcow2" {
			return runtime.Status{}, fmt.Errorf("%w: node VM %q: disks[%d] %q: format %q: want raw or qcow2", runtime.ErrInvalid, spec.ID, i, disk.ID, disk.Format)
		}
		if err := regularFile(disk.Path); err != nil {
			return runtime.Status{}, fmt.Errorf("%w: node VM %q: disks[%d] %q: %w", runtime.ErrInvalid, spec.ID, i, disk.ID, err)
		}
	}
	kernel, err := guest.LocateKernel(d.cfg.KernelDir)
	if err != nil {
		return runtime.Status{}, err
	}

	unlock := d.lockID(spec.ID)
	defer unlock()
	if err := os.Mkdir(d.dir(spec.ID), 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return runtime.Status{}, fmt.Errorf("%w: instance %q", runtime.ErrAlreadyExists, spec.ID)
		}
		return runtime.Status{}, err
	}
	var proc *os.Process
	defer func() {
		if err == nil {
			return
		}
		if proc != nil {
			_ = proc.Kill()
			waitGone(proc.Pid, 5*time.Second)
		}
		if rmErr := os.RemoveAll(d.dir(spec.ID)); rmErr != nil {
			d.log.Warn("qemu driver: clean up a failed node VM start", "id", spec.ID, "err", rmErr)
		}
	}()
	data, err := os.ReadFile(spec.Initrd)
	if err != nil {
		return runtime.Status{}, fmt.Errorf("node VM %q: initrd: %w", spec.ID, err)
	}
	if err := os.WriteFile(d.path(spec.ID, initrdFile), data, 0o600); err != nil { //nolint:gosec // the ID passed runtime.ValidID: no separators
		return runtime.Status{}, err
	}
	labels := map[string]string{LabelNodeVM: "true"}
	for k, v := range spec.Labels {
		if k != LabelNodeVM {
			labels[k] = v
		}
	}
	// No workload: the controller reconciles instances by workload, and would
	// remove those of a workload it does not know.
	r := &record{
		ID: spec.ID, Source: sourceNode, Labels: labels,
		LogPath: spec.LogPath, Accel: d.accel, Args: d.nodeArgs(inst, kernel, spec, format),
	}
	if err := d.writeRecord(r); err != nil {
		return runtime.Status{}, err
	}
	if err := d.writeDevices(spec.ID, nodeDevices{Ports: spec.Ports}); err != nil {
		return runtime.Status{}, err
	}
	proc, err = d.launch(ctx, r)
	if err != nil {
		return runtime.Status{}, fmt.Errorf("node VM %q: %w", spec.ID, err)
	}
	return r.status(), nil
}

// nodeArgs is a node VM's QEMU command line.
func (d *Driver) nodeArgs(inst runtime.InstanceSpec, k guest.Kernel, spec NodeSpec, format string) []string {
	cmdline := NodeCmdline
	if c := strings.TrimSpace(spec.Cmdline); c != "" {
		cmdline += " " + c
	}
	machine := "q35"
	if spec.SharedMemory {
		machine += ",memory-backend=" + sharedMemoryID
	}
	args := d.machine(inst, machine)
	if spec.SharedMemory {
		args = append(args, "-object", sharedMemoryObject(inst.MemoryBytes))
	}
	args = append(args,
		"-kernel", k.Vmlinuz, "-initrd", d.path(spec.ID, initrdFile), "-append", cmdline,
	)
	args = append(args, d.agentPorts(spec.ID, "virtio-serial-pci")...)
	if spec.RootDisk != "" {
		args = append(args,
			"-blockdev", "driver=file,filename="+spec.RootDisk+",node-name=file0",
			"-blockdev", "driver="+format+",file=file0,node-name=disk0",
			"-device", "virtio-blk-pci,drive=disk0")
	}
	for i, disk := range spec.Disks {
		file, node := "rofile"+strconv.Itoa(i), "rodisk"+strconv.Itoa(i)
		args = append(args,
			"-blockdev", "driver=file,filename="+disk.Path+",node-name="+file+",read-only=on",
			"-blockdev", "driver="+disk.Format+",file="+file+",node-name="+node+",read-only=on",
			"-device", "virtio-blk-pci,drive="+node+",serial="+disk.ID)
	}
	// Free page reporting: the guest hands memory it freed back to QEMU,
	// which drops it (what the kernel's unpacking of the initramfs touched,
	// and what ended containers held).
	args = append(args, "-device", "virtio-balloon-pci,free-page-reporting=on")
	return append(args, rootPortArgs(spec.Ports)...)
}

// rootPortArgs creates n PCIe root ports, rp0 to rp(n-1), eight to a slot of
// q35's root bus (functions of one multi-function device, from slot 0x10 on,
// clear of the slots QEMU gives devices without an address), each its own
// chassis. They reserve no I/O ports: virtio devices need none, and 32 ports
// with the default 4 KiB each would exhaust the 64 KiB I/O space.
func rootPortArgs(n int) []string {
	var args []string
	for i := range n {
		slot, fn := 0x10+i/8, i%8
		dev := fmt.Sprintf("pcie-root-port,id=%s,bus=pcie.0,chassis=%d,addr=0x%x.0x%x,io-reserve=0", rootPort(i), i+1, slot, fn)
		if fn == 0 {
			dev += ",multifunction=on"
		}
		args = append(args, "-device", dev)
	}
	return args
}

func rootPort(i int) string { return "rp" + strconv.Itoa(i) }

// devicesFile is the node VM's record of what its root ports hold.
const devicesFile = "devices.json"

// nodeDevices is what a node VM's root ports hold, in its directory, so that
// a restarted daemon can detach what an earlier one attached.
type nodeDevices struct {
	// Ports is the VM's number of root ports.
	Ports   int          `json:"ports"`
	Devices []nodeDevice `json:"devices"`
}

// nodeDevice is one device plugged into a node VM's root port.
type nodeDevice struct {
	Kind   deviceKind `json:"kind"`
	ID     string     `json:"id"`
	Port   int        `json:"port"`
	MAC    string     `json:"mac,omitempty"`
	Path   string     `json:"path,omitempty"`
	Format string     `json:"format,omitempty"`
	// PID and PIDStart identify a shared directory's virtiofsd (kindFS),
	// as an instance's record identifies its QEMU.
	PID      int    `json:"pid,omitempty"`
	PIDStart uint64 `json:"pidStart,omitempty"`
}

type deviceKind string

const (
	kindNIC  deviceKind = "nic"
	kindDisk deviceKind = "disk"
	kindFS   deviceKind = "fs"
)

// QEMU's names of a hot-plugged device and its back end.
func (n nodeDevice) qdevID() string   { return "hp-" + n.ID }
func (n nodeDevice) netdevID() string { return "hpnet-" + n.ID }
func (n nodeDevice) blockNode() string {
	return "hpblk-" + n.ID
}
func (n nodeDevice) fileNode() string  { return "hpfile-" + n.ID }
func (n nodeDevice) chardevID() string { return "hpfs-" + n.ID }

func (d *Driver) readDevices(id string) (nodeDevices, error) {
	var ds nodeDevices
	data, err := os.ReadFile(d.path(id, devicesFile))
	if errors.Is(err, os.ErrNotExist) {
		return ds, nil
	}
	if err != nil {
		return ds, err
	}
	if err := json.Unmarshal(data, &ds); err != nil {
		return ds, fmt.Errorf("node VM %q: %s: %w", id, d.path(id, devicesFile), err)
	}
	return ds, nil
}

func (d *Driver) writeDevices(id string, ds nodeDevices) error {
	data, err := json.MarshalIndent(ds, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(d.path(id, devicesFile), data)
}

// NodeDevice is a device plugged into a running node VM, as NodeDevices lists it.
type NodeDevice struct {
	// Kind is "nic", "disk" or "fs".
	Kind string
	// ID is the caller's name for it.
	ID string
	// Port is the root port that holds it, from 0.
	Port int
	// MAC is a NIC's address; Path and Format a disk's file; Path is a
	// shared directory's too, and PID its virtiofsd's.
	MAC, Path, Format string
	PID               int
}

// NodeDevices lists the devices plugged into node VM id, by port.
func (d *Driver) NodeDevices(id string) ([]NodeDevice, error) {
	if !runtime.ValidID(id) {
		return nil, fmt.Errorf("%w: node VM %q", runtime.ErrNotFound, id)
	}
	unlock := d.lockID(id)
	defer unlock()
	if _, err := d.readRecord(id); err != nil {
		return nil, err
	}
	ds, err := d.readDevices(id)
	if err != nil {
		return nil, err
	}
	out := make([]NodeDevice, 0, len(ds.Devices))
	for _, n := range ds.Devices {
		out = append(out, NodeDevice{Kind: string(n.Kind), ID: n.ID, Port: n.Port, MAC: n.MAC, Path: n.Path, Format: n.Format, PID: n.PID})
	}
	return out, nil
}

// freePort is the lowest root port no device holds; ok is false when all do.
func (ds nodeDevices) freePort() (int, bool) {
	used := make([]bool, ds.Ports)
	for _, n := range ds.Devices {
		if n.Port >= 0 && n.Port < ds.Ports {
			used[n.Port] = true
		}
	}
	for i, u := range used {
		if !u {
			return i, true
		}
	}
	return 0, false
}

func (ds nodeDevices) find(id string) (int, bool) {
	for i, n := range ds.Devices {
		if n.ID == id {
			return i, true
		}
	}
	return 0, false
}

// runningNode returns node VM id's record when its QEMU runs. The caller
// holds the instance's lock.
func (d *Driver) runningNode(id string) (*record, error) {
	if !runtime.ValidID(id) {
		return nil, fmt.Errorf("%w: node VM %q", runtime.ErrNotFound, id)
	}
	r, err := d.readRecord(id)
	if err != nil {
		return nil, err
	}
	if r.Source != sourceNode {
		return nil, fmt.Errorf("%w: instance %q is not a node VM; devices are plugged into node VMs only", runtime.ErrUnsupported, id)
	}
	d.settle(r)
	if r.Finished || r.PID == 0 {
		return nil, fmt.Errorf("%w: node VM %q", runtime.ErrNotRunning, id)
	}
	return r, nil
}

// checkDeviceID checks the caller's name of a device: the characters of an
// instance ID, at most 20 (a disk's serial number carries it).
func checkDeviceID(vm, id string) error {
	if !runtime.ValidID(id) || len(id) > maxDeviceID {
		return fmt.Errorf("%w: node VM %q: device ID %q: use lower-case letters, digits, '-' and '.', at most %d characters", runtime.ErrInvalid, vm, id, maxDeviceID)
	}
	return nil
}

// maxDeviceID is the longest device ID: a virtio disk's serial holds 20 bytes.
const maxDeviceID = 20

// ImageDisk resolves ref in the driver's image store and returns the image
// with its root filesystem as an ext4 disk, the one image VMs boot from (made
// once per image, kept under StateDir/images): a node VM gets it as a
// read-only disk (AttachDisk). ErrImageNotFound when the store lacks ref,
// ErrUnsupported when the driver has no image store.
func (d *Driver) ImageDisk(ctx context.Context, ref string) (runtime.ImageInfo, string, error) {
	if err := d.check(); err != nil {
		return runtime.ImageInfo{}, "", err
	}
	if d.cfg.Images == nil {
		return runtime.ImageInfo{}, "", fmt.Errorf("%w: this qemu driver has no image store to take %s from", runtime.ErrUnsupported, ref)
	}
	info, err := d.cfg.Images.ResolveImage(ctx, ref)
	if err != nil {
		return runtime.ImageInfo{}, "", err
	}
	disk, err := d.rootDisk(ctx, info, 0)
	if err != nil {
		return runtime.ImageInfo{}, "", err
	}
	return info, disk, nil
}

// NodeAgent returns the connection to the guest agent of running node VM id
// (shared: the caller does not close it), dialling it and waiting for the
// guest when there is none. ErrNotRunning once the VM has ended.
func (d *Driver) NodeAgent(ctx context.Context, id string) (*guest.AgentClient, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	unlock := d.lockID(id)
	_, err := d.runningNode(id)
	unlock()
	if err != nil {
		return nil, err
	}
	return d.agent(ctx, id)
}

// DropNodeAgent closes the connection NodeAgent returned after it failed, so
// that the next NodeAgent dials again.
func (d *Driver) DropNodeAgent(id string, a *guest.AgentClient) { d.dropAgent(id, a) }

// GuestKernel is the guest kernel the driver boots, found as an image VM's
// is: in Config.KernelDir, or where it is empty strata's own kernel, else
// Debian's cloud kernel (guest.LocateKernel).
func (d *Driver) GuestKernel() (guest.Kernel, error) { return guest.LocateKernel(d.cfg.KernelDir) }

// GuestInit is the path of the guest init program (strata-guest) the driver
// puts into its guests.
func (d *Driver) GuestInit() string { return d.cfg.GuestInit }
