package netseg

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// tapType is netlink's Type() of a tun or tap device.
const tapType = "tuntap"

// tunDevice is the clone device that creates and opens taps.
const tunDevice = "/dev/net/tun"

// tapFlags describe strata's taps, at creation and at every open: Ethernet
// frames (a tap, not a tun), no packet-information prefix, and a
// virtio_net_hdr before each frame (QEMU probes for it and uses it).
// Never IFF_MULTI_QUEUE: QEMU opens a tap it is handed as one queue, and
// TUNSETIFF refuses (EINVAL) an open whose multi-queue flag differs from
// the device's.
const tapFlags = unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR

// AttachTap gives instance id, a VM, a tap device on segment segName and
// returns where it is (an Attachment of KindTap). The tap is a port of the
// segment's bridge in the Host namespace, up, and persistent: it stays
// while no process has it open. The VM gets the segment's next free
// address; give its NIC Attachment.MAC and configure Attachment.IP, Subnet
// and Gateway inside it. OpenTap opens the tap for QEMU.
//
// The tap is up but has no carrier until a process opens it, so, unlike
// Attach, AttachTap does not wait for it to be operationally up.
//
// AttachTap is idempotent: for an instance already attached to segName
// with a tap it returns the recorded attachment, after checking the bridge
// and the tap; a missing or broken tap is replaced by a new one with the
// same address (a VM that held the old one must be given the new one with
// OpenTap). An instance attached to another segment, or attached with a
// veth (Attach), is ErrConflict; an unknown segment is ErrNotFound; a full
// segment is ErrExhausted. A failed AttachTap leaves nothing behind.
func (m *Manager) AttachTap(ctx context.Context, segName, id string) (_ Attachment, err error) {
	seg, h, done, err := m.prepare(ctx, segName, id)
	if err != nil {
		return Attachment{}, err
	}
	defer done()

	if rec, ok := m.attachments[id]; ok {
		if err := checkSame(rec, segName, KindTap); err != nil {
			return Attachment{}, err
		}
		if err := m.syncGuard(); err != nil {
			return Attachment{}, fmt.Errorf("instance %q: %w", id, err)
		}
		problem := m.verifyTap(h, seg, rec)
		if problem == nil {
			return m.attachment(rec), nil
		}
		if err := m.buildTap(h, seg, rec); err != nil {
			return Attachment{}, fmt.Errorf("instance %q: %w", id, err)
		}
		m.log.Info("instance reattached", "instance", id, "segment", segName, "ip", rec.IP, "tap", rec.Tap, "reason", problem.Error())
		return m.attachment(rec), nil
	}

	var rv revert
	defer rv.undoOn(&err)
	// Runs last on failure, once the record is gone: the binding goes too.
	rv.add("port bindings", m.syncGuard)
	tap := tapName(m.opts.BridgePrefix, id)
	rec, err := m.claim(&rv, seg, attachRecord{Instance: id, Segment: segName, Kind: KindTap, Tap: tap}, tap)
	if err != nil {
		return Attachment{}, err
	}
	// The tap is bound before it exists, so the VM's first frame meets the guard.
	if err := m.syncGuard(); err != nil {
		return Attachment{}, fmt.Errorf("instance %q: %w", id, err)
	}
	if err := m.buildTap(h, seg, rec); err != nil {
		return Attachment{}, fmt.Errorf("instance %q: %w", id, err)
	}
	m.log.Info("instance attached", "instance", id, "segment", segName, "ip", rec.IP, "tap", tap)
	return m.attachment(rec), nil
}

// buildTap creates rec's tap on seg, replacing whatever tap has its name,
// makes it a port of the bridge and brings it up. On failure it undoes what
// it did, newest first; the bridge stays.
func (m *Manager) buildTap(h *netlink.Handle, seg *segment, rec attachRecord) (err error) {
	var rv revert
	defer rv.undoOn(&err)
	if _, err := m.ensureBridge(h, seg.Segment); err != nil {
		return err
	}
	br, err := h.LinkByName(seg.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", seg.Bridge, err)
	}
	// A broken tap, or one left by an interrupted run.
	if err := deleteLink(h, rec.Tap, tapType); err != nil {
		return err
	}

	if err := m.step("tap"); err != nil {
		return err
	}
	tap := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: rec.Tap},
		Mode:      netlink.TUNTAP_MODE_TAP,
		// Queues 0: netlink opens one fd with exactly these flags, makes
		// the device persistent (NonPersist false) and closes the fd.
		// (Queues > 0 with no flags would make a multi-queue tap.)
		// TUN_EXCL fails rather than reuse a device of the same name.
		Flags: netlink.TUNTAP_TUN_EXCL | netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR,
	}
	// netlink creates the tap by opening /dev/net/tun, and the kernel puts
	// it in the namespace of the thread that opens it, not the handle's.
	if err := m.opts.Host.Do(func() error { return h.LinkAdd(tap) }); err != nil {
		return fmt.Errorf("create tap %s: %w", rec.Tap, err)
	}
	rv.add("tap "+rec.Tap, func() error { return deleteLink(h, rec.Tap, tapType) })
	l, err := h.LinkByName(rec.Tap)
	if err != nil {
		return fmt.Errorf("look up new tap %s: %w", rec.Tap, err)
	}

	if err := m.step("port"); err != nil {
		return err
	}
	if err := h.LinkSetMaster(l, br); err != nil {
		return fmt.Errorf("add tap %s to bridge %s: %w", rec.Tap, seg.Bridge, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("bring tap %s up: %w", rec.Tap, err)
	}
	return nil
}

// verifyTap checks that rec's tap is whole on the host: seg's bridge up
// with the gateway address, the tap a persistent single-queue tap, a port
// of the bridge, up. It returns the first problem it finds.
func (m *Manager) verifyTap(h *netlink.Handle, seg *segment, rec attachRecord) error {
	br, err := verifyBridge(h, seg)
	if err != nil {
		return err
	}
	l, err := linkByName(h, rec.Tap)
	if err != nil {
		return err
	}
	if l == nil {
		return fmt.Errorf("tap %s is missing", rec.Tap)
	}
	tap, ok := l.(*netlink.Tuntap)
	switch {
	case !ok:
		return fmt.Errorf("link %s is a %s, not a tap", rec.Tap, l.Type())
	case tap.Mode != netlink.TUNTAP_MODE_TAP:
		return fmt.Errorf("link %s is a tun, not a tap", rec.Tap)
	case tap.Flags&netlink.TUNTAP_MULTI_QUEUE != 0:
		return fmt.Errorf("tap %s is multi-queue", rec.Tap)
	case tap.NonPersist:
		return fmt.Errorf("tap %s is not persistent", rec.Tap)
	case tap.MasterIndex != br.Attrs().Index:
		return fmt.Errorf("tap %s is not a port of bridge %s", rec.Tap, seg.Bridge)
	case !isUp(tap):
		return fmt.Errorf("tap %s is down", rec.Tap)
	}
	return nil
}

// OpenTap opens the tap of instance id for its VM and returns the file to
// hand to QEMU: in exec.Cmd.ExtraFiles, named by `-netdev
// tap,id=n0,fd=N,vhost=off`, where N is 3 plus its index in ExtraFiles.
// The file carries Ethernet frames, each after a virtio_net_hdr; QEMU
// finds that out itself. The caller closes its copy once QEMU has started.
// The file is in non-blocking mode (so that Go's deadlines work on it);
// QEMU sets the mode it wants on its copy.
//
// A tap can be open in one process at a time: OpenTap of a tap that is
// open elsewhere (a VM still running on it) is ErrConflict. An instance
// with no tap attachment is ErrNotFound. A tap that is missing or broken
// is an error that AttachTap repairs.
func (m *Manager) OpenTap(id string) (*os.File, error) {
	if err := checkInstanceID(id); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.attachments[id]
	if !ok || rec.Kind != KindTap {
		return nil, fmt.Errorf("%w: instance %q has no tap attachment; AttachTap it first", ErrNotFound, id)
	}
	h, err := m.opts.Host.Netlink()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	if err := m.verifyTap(h, m.segments[rec.Segment], rec); err != nil {
		return nil, fmt.Errorf("instance %q: %w; AttachTap repairs it", id, err)
	}
	var f *os.File
	err = m.opts.Host.Do(func() error {
		var err error
		f, err = openTap(rec.Tap)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("instance %q: %w", id, err)
	}
	return f, nil
}

// openTap opens the existing persistent tap called name, in the namespace
// of the calling thread (the kernel looks the name up there).
func openTap(name string) (_ *os.File, err error) {
	fd, err := unix.Open(tunDevice, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", tunDevice, err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, fmt.Errorf("tap %s: %w", name, err)
	}
	ifr.SetUint16(tapFlags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		switch {
		case errors.Is(err, unix.EBUSY):
			return nil, fmt.Errorf("%w: tap %s is open in another process (a VM still running on it?); stop that VM first", ErrConflict, name)
		case errors.Is(err, unix.EINVAL):
			return nil, fmt.Errorf("tap %s does not take strata's flags (a tun, or multi-queue?); AttachTap replaces it: %w", name, err)
		}
		return nil, fmt.Errorf("attach to tap %s: %w", name, err)
	}
	// TUNSETIFF creates a device when none has the name (if the tap went
	// away since it was checked). That one is not persistent and not on
	// the bridge; closing fd deletes it again.
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return nil, fmt.Errorf("flags of tap %s: %w", name, err)
	}
	if ifr.Uint16()&unix.IFF_PERSIST == 0 {
		return nil, fmt.Errorf("tap %s is missing; AttachTap re-creates it", name)
	}
	// Non-blocking before os.NewFile, so that the file uses Go's poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("tap %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), tunDevice+":"+name), nil
}
