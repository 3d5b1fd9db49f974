package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"strata.dev/strata/internal/runtime"
)

// UnplugTimeout bounds how long a detach waits for the guest to let go of a
// device (QEMU's DEVICE_DELETED event).
const UnplugTimeout = 30 * time.Second

// Errors of hot-plugging, for errors.Is.
var (
	// ErrNoFreePort: every root port of the node VM holds a device.
	ErrNoFreePort = errors.New("no free hot-plug port")
	// ErrDeviceExists: the node VM holds a device of that ID.
	ErrDeviceExists = errors.New("device already attached")
	// ErrNoDevice: the node VM holds no device of that ID and kind.
	ErrNoDevice = errors.New("no such device")
)

// NIC is a network card to plug into a node VM.
type NIC struct {
	// ID names the NIC among the VM's devices (at most 20 characters of an
	// instance ID's); DetachNIC takes it.
	ID string
	// Tap is the open tap the NIC carries frames through (netseg's
	// Manager.OpenTap); QEMU gets a copy, the caller closes Tap afterwards.
	Tap *os.File
	// MAC is the NIC's address: the one the network manager bound the tap
	// to (netseg's Attachment.MAC), or the port guard drops its frames.
	MAC net.HardwareAddr
}

// Disk is a read-only disk to plug into a node VM.
type Disk struct {
	// ID names the disk among the VM's devices (at most 20 characters of an
	// instance ID's); the guest sees it as the disk's serial number
	// (/sys/block/vdX/serial, /dev/disk/by-id/virtio-ID).
	ID string
	// Path is the disk's file, absolute; Format is "raw" (the default) or
	// "qcow2". QEMU opens it read-only.
	Path, Format string
}

// AttachNIC plugs a virtio-net-pci NIC on nic.Tap into the lowest free root
// port of running node VM vm. The guest sees a new interface with nic.MAC.
func (d *Driver) AttachNIC(ctx context.Context, vm string, nic NIC) error {
	if err := d.check(); err != nil {
		return err
	}
	if err := checkDeviceID(vm, nic.ID); err != nil {
		return err
	}
	if nic.Tap == nil {
		return fmt.Errorf("%w: node VM %q: NIC %q: no tap", runtime.ErrInvalid, vm, nic.ID)
	}
	if len(nic.MAC) != 6 {
		return fmt.Errorf("%w: node VM %q: NIC %q: MAC %q is not a 6-byte Ethernet address", runtime.ErrInvalid, vm, nic.ID, nic.MAC)
	}
	dev := nodeDevice{Kind: kindNIC, ID: nic.ID, MAC: nic.MAC.String()}
	return d.plug(ctx, vm, dev, func(m *monitor, dev nodeDevice) error {
		if err := m.clearLeftover(ctx, dev); err != nil {
			return err
		}
		fdName := "fd-" + dev.ID
		if err := m.sendFD(ctx, fdName, nic.Tap); err != nil {
			return err
		}
		if _, err := m.execute(ctx, "netdev_add", map[string]any{
			"type": "tap", "id": dev.netdevID(), "fd": fdName, "vhost": false,
		}); err != nil {
			m.undo("closefd", map[string]any{"fdname": fdName})
			return err
		}
		if _, err := m.execute(ctx, "device_add", map[string]any{
			"driver": "virtio-net-pci", "id": dev.qdevID(), "netdev": dev.netdevID(),
			"mac": dev.MAC, "bus": rootPort(dev.Port),
		}); err != nil {
			m.undo("netdev_del", map[string]any{"id": dev.netdevID()})
			return err
		}
		return nil
	})
}

// AttachDisk plugs disk read-only, as a virtio-blk-pci disk, into the lowest
// free root port of running node VM vm.
func (d *Driver) AttachDisk(ctx context.Context, vm string, disk Disk) error {
	if err := d.check(); err != nil {
		return err
	}
	if err := checkDeviceID(vm, disk.ID); err != nil {
		return err
	}
	format := disk.Format
	if format == "" {
		format = "raw"
	}
	if format != "raw" && format != "qcow2" {
		return fmt.Errorf("%w: node VM %q: disk %q: format %q: want raw or qcow2", runtime.ErrInvalid, vm, disk.ID, disk.Format)
	}
	if err := regularFile(disk.Path); err != nil {
		return fmt.Errorf("%w: node VM %q: disk %q: %w", runtime.ErrInvalid, vm, disk.ID, err)
	}
	dev := nodeDevice{Kind: kindDisk, ID: disk.ID, Path: disk.Path, Format: format}
	return d.plug(ctx, vm, dev, func(m *monitor, dev nodeDevice) error {
		if err := m.clearLeftover(ctx, dev); err != nil {
			return err
		}
		if _, err := m.execute(ctx, "blockdev-add", map[string]any{
			"driver": dev.Format, "node-name": dev.blockNode(), "read-only": true,
			"file": map[string]any{"driver": "file", "node-name": dev.fileNode(), "filename": dev.Path, "read-only": true},
		}); err != nil {
			return err
		}
		if _, err := m.execute(ctx, "device_add", map[string]any{
			"driver": "virtio-blk-pci", "id": dev.qdevID(), "drive": dev.blockNode(),
			"serial": dev.ID, "bus": rootPort(dev.Port),
		}); err != nil {
			m.undo("blockdev-del", map[string]any{"node-name": dev.blockNode()})
			return err
		}
		return nil
	})
}

// plug gives dev a free root port of vm, records it and runs add over the
// VM's monitor; a failed add forgets the device again.
func (d *Driver) plug(ctx context.Context, vm string, dev nodeDevice, add func(*monitor, nodeDevice) error) error {
	unlock := d.lockID(vm)
	defer unlock()
	if _, err := d.runningNode(vm); err != nil {
		return err
	}
	ds, err := d.readDevices(vm)
	if err != nil {
		return err
	}
	if i, dup := ds.find(dev.ID); dup {
		return fmt.Errorf("%w: node VM %q already holds a device %q (a %s in port %d); detach it first or pick another ID",
			ErrDeviceExists, vm, dev.ID, ds.Devices[i].Kind, ds.Devices[i].Port)
	}
	port, ok := ds.freePort()
	if !ok {
		return fmt.Errorf("%w: node VM %q: all %d hot-plug ports hold devices; detach one before attaching %s %q",
			ErrNoFreePort, vm, ds.Ports, dev.Kind, dev.ID)
	}
	dev.Port = port
	// Recorded before QEMU has it: a daemon that dies half-way leaves a
	// record that Detach clears (whatever part QEMU has), never a device
	// that nothing knows of.
	before := ds.Devices
	ds.Devices = append(append([]nodeDevice{}, before...), dev)
	if err := d.writeDevices(vm, ds); err != nil {
		return fmt.Errorf("node VM %q: record %s %q: %w", vm, dev.Kind, dev.ID, err)
	}
	m, err := dialMonitor(ctx, d.path(vm, qmpSocket))
	if err == nil {
		err = add(m, dev)
		_ = m.close()
	}
	if err != nil {
		ds.Devices = before
		if werr := d.writeDevices(vm, ds); werr != nil {
			d.log.Warn("qemu driver: forget a device that failed to attach", "vm", vm, "device", dev.ID, "err", werr)
		}
		return fmt.Errorf("node VM %q: attach %s %q to port %d: %w", vm, dev.Kind, dev.ID, dev.Port, err)
	}
	return nil
}

// clearLeftover removes what QEMU still holds of a device with dev's ID:
// an attach cut short between two commands (its context ended, the daemon
// died) leaves a back end, or the device itself, that no record names and
// that would make every later attach of that ID fail as a duplicate. plug
// has found no record of the ID, so whatever QEMU has of it is a leftover.
func (m *monitor) clearLeftover(ctx context.Context, dev nodeDevice) error {
	if err := m.deviceDel(ctx, dev.qdevID()); err != nil {
		return fmt.Errorf("remove device %s left by an earlier attach: %w", dev.qdevID(), err)
	}
	var cmd string
	var args map[string]any
	switch dev.Kind {
	case kindNIC:
		cmd, args = "netdev_del", map[string]any{"id": dev.netdevID()}
	case kindDisk:
		cmd, args = "blockdev-del", map[string]any{"node-name": dev.blockNode()}
	case kindFS:
		cmd, args = "chardev-remove", map[string]any{"id": dev.chardevID()}
	default:
		return nil
	}
	if _, err := m.execute(ctx, cmd, args); err != nil && !notFound(err) {
		return fmt.Errorf("remove the back end of %s left by an earlier attach: %w", dev.qdevID(), err)
	}
	return nil
}

// undo runs a command that takes back half an attach, also when the
// attach's context has ended (which may be why it failed): otherwise its
// back end stays in QEMU. clearLeftover catches what undo could not.
func (m *monitor) undo(cmd string, args map[string]any) {
	ctx, cancel := context.WithTimeout(context.Background(), undoTimeout)
	defer cancel()
	_, _ = m.execute(ctx, cmd, args)
}

// undoTimeout bounds one command of undo.
const undoTimeout = 10 * time.Second

// DetachNIC unplugs NIC id from node VM vm: the guest is asked to release
// it, and once QEMU reports it gone its tap back end is removed (QEMU closes
// its copy of the tap).
func (d *Driver) DetachNIC(ctx context.Context, vm, id string) error {
	return d.unplug(ctx, vm, id, kindNIC)
}

// DetachDisk unplugs disk id from node VM vm and closes its file.
func (d *Driver) DetachDisk(ctx context.Context, vm, id string) error {
	return d.unplug(ctx, vm, id, kindDisk)
}

func (d *Driver) unplug(ctx context.Context, vm, id string, kind deviceKind) error {
	if err := d.check(); err != nil {
		return err
	}
	unlock := d.lockID(vm)
	defer unlock()
	if _, err := d.runningNode(vm); err != nil {
		return err
	}
	ds, err := d.readDevices(vm)
	if err != nil {
		return err
	}
	i, ok := ds.find(id)
	if !ok || ds.Devices[i].Kind != kind {
		return fmt.Errorf("%w: node VM %q has no %s %q", ErrNoDevice, vm, kind, id)
	}
	dev := ds.Devices[i]
	m, err := dialMonitor(ctx, d.path(vm, qmpSocket))
	if err != nil {
		return fmt.Errorf("node VM %q: detach %s %q: %w", vm, kind, id, err)
	}
	defer m.close()
	if err := m.deviceDel(ctx, dev.qdevID()); err != nil {
		return fmt.Errorf("node VM %q: detach %s %q from port %d: %w", vm, kind, id, dev.Port, err)
	}
	var backend error
	switch kind {
	case kindNIC:
		_, backend = m.execute(ctx, "netdev_del", map[string]any{"id": dev.netdevID()})
	case kindDisk:
		_, backend = m.execute(ctx, "blockdev-del", map[string]any{"node-name": dev.blockNode()})
	case kindFS:
		_, backend = m.execute(ctx, "chardev-remove", map[string]any{"id": dev.chardevID()})
		stopVirtiofsd(dev.PID, dev.PIDStart)
		_ = os.Remove(d.fsSocket(vm, dev.ID))
	}
	if backend != nil && !notFound(backend) {
		return fmt.Errorf("node VM %q: detach %s %q: the device is gone but not its back end: %w", vm, kind, id, backend)
	}
	ds.Devices = append(ds.Devices[:i], ds.Devices[i+1:]...)
	return d.writeDevices(vm, ds)
}

// deviceDel asks the guest to release device id and waits, at most
// UnplugTimeout, until QEMU reports it deleted. A device QEMU does not have
// (deleted while no daemon watched) counts as deleted.
func (m *monitor) deviceDel(ctx context.Context, id string) error {
	if _, err := m.execute(ctx, "device_del", map[string]any{"id": id}); err != nil {
		if notFound(err) {
			return nil
		}
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, UnplugTimeout)
	defer cancel()
	_, err := m.waitEvent(wctx, "DEVICE_DELETED", func(data json.RawMessage) bool {
		var ev struct {
			Device string `json:"device"`
		}
		return json.Unmarshal(data, &ev) == nil && ev.Device == id
	})
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("the guest did not release the device within %v (its kernel must handle PCIe hot-unplug); try again", UnplugTimeout)
	}
	return err
}

// notFound says whether QEMU refused a command because the object it names
// does not exist.
func notFound(err error) bool {
	var qe *qmpError
	return errors.As(err, &qe) && (qe.Class == "DeviceNotFound" ||
		// netdev_del and blockdev-del of an unknown ID are GenericErrors.
		qe.Class == "GenericError" && (strings.Contains(qe.Desc, "not found") || strings.Contains(qe.Desc, "Failed to find")))
}

// sendFD hands f to QEMU under name (QMP getfd: the descriptor travels
// with the command as SCM_RIGHTS ancillary data).
func (m *monitor) sendFD(ctx context.Context, name string, f *os.File) error {
	uc, ok := m.conn.(*net.UnixConn)
	if !ok {
		return errors.New("QMP getfd: the monitor is not a unix socket")
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	data, err := json.Marshal(map[string]any{"execute": "getfd", "arguments": map[string]any{"fdname": name}})
	if err != nil {
		return err
	}
	var werr error
	if err := raw.Control(func(fd uintptr) {
		_, _, werr = uc.WriteMsgUnix(append(data, '\n'), syscall.UnixRights(int(fd)), nil)
	}); err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("QMP getfd: %w", werr)
	}
	_, err = m.reply(ctx, "getfd")
	return err
}
