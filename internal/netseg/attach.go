package netseg

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Attach gives instance id a network namespace on segment segName and
// returns where it is (an Attachment of KindVeth). The instance gets the
// segment's next free address.
//
// Attach is idempotent: for an instance already attached to segName it
// returns the recorded attachment, after checking the host and rebuilding,
// with the same address, whatever is missing (after a reboot, or a runtime
// that stripped the namespace). An instance attached to another segment is
// ErrConflict, as is an instance attached with a tap (AttachTap); an unknown
// segment is ErrNotFound (EnsureSegment first); a full segment is
// ErrExhausted. A failed Attach leaves nothing behind.
func (m *Manager) Attach(ctx context.Context, segName, id string) (Attachment, error) {
	return m.attach(ctx, segName, id, false)
}

// Reattach rebuilds the network namespace and veth pair of instance id,
// attached or not, keeping its address if it had one. Use it before each
// start of a runtime that consumes its namespace (gVisor's runsc strips
// the address when a sandbox exits). Anything still inside the old
// namespace loses its network.
func (m *Manager) Reattach(ctx context.Context, segName, id string) (Attachment, error) {
	return m.attach(ctx, segName, id, true)
}

// prepare starts an attach of instance id to segment segName: it checks both names, takes
// the manager's lock and opens a netlink handle on the host. done closes the handle and
// releases the lock.
func (m *Manager) prepare(ctx context.Context, segName, id string) (_ *segment, _ *netlink.Handle, done func(), _ error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	if err := checkSegmentName(segName); err != nil {
		return nil, nil, nil, err
	}
	if err := checkInstanceID(id); err != nil {
		return nil, nil, nil, err
	}
	m.mu.Lock()
	seg, ok := m.segments[segName]
	if !ok {
		m.mu.Unlock()
		return nil, nil, nil, fmt.Errorf("%w: segment %q; ensure the segment before attaching instance %q", ErrNotFound, segName, id)
	}
	h, err := m.opts.Host.Netlink()
	if err != nil {
		m.mu.Unlock()
		return nil, nil, nil, err
	}
	return seg, h, func() { h.Close(); m.mu.Unlock() }, nil
}

func (m *Manager) attach(ctx context.Context, segName, id string, rebuild bool) (_ Attachment, err error) {
	seg, h, done, err := m.prepare(ctx, segName, id)
	if err != nil {
		return Attachment{}, err
	}
	defer done()

	if rec, ok := m.attachments[id]; ok {
		if err := checkSame(rec, segName, KindVeth); err != nil {
			return Attachment{}, err
		}
		if err := m.syncGuard(); err != nil {
			return Attachment{}, fmt.Errorf("instance %q: %w", id, err)
		}
		reason := "reattach"
		if !rebuild {
			problem := m.verify(h, seg, rec)
			if problem == nil {
				return m.attachment(rec), nil
			}
			reason = problem.Error()
		}
		// The record and the address stay. A repair keeps a mounted
		// namespace, and so the processes in it; Reattach starts afresh.
		var err error
		if rebuild {
			err = m.teardown(h, rec)
		} else {
			err = deleteLink(h, rec.HostVeth, "veth")
		}
		if err != nil {
			return Attachment{}, fmt.Errorf("instance %q: %w", id, err)
		}
		if err := m.build(ctx, h, seg, rec, rebuild); err != nil {
			return Attachment{}, fmt.Errorf("instance %q: %w", id, err)
		}
		m.log.Info("instance reattached", "instance", id, "segment", segName, "ip", rec.IP, "reason", reason)
		return m.attachment(rec), nil
	}

	var rv revert
	defer rv.undoOn(&err)
	// Runs last on failure, once the record is gone: the binding goes too.
	rv.add("port bindings", m.syncGuard)
	veth := vethName(m.opts.BridgePrefix, id)
	rec, err := m.claim(&rv, seg, attachRecord{
		Instance: id,
		Segment:  segName,
		Kind:     KindVeth,
		HostVeth: veth,
		NetNS:    filepath.Join(m.opts.NetNSDir, id),
	}, veth)
	if err != nil {
		return Attachment{}, err
	}
	// The port is bound before it exists, so its first frame meets the guard.
	if err := m.syncGuard(); err != nil {
		return Attachment{}, fmt.Errorf("instance %q: %w", id, err)
	}
	// An interrupted earlier run may have left things under these names.
	if err := m.teardown(h, rec); err != nil {
		return Attachment{}, fmt.Errorf("instance %q: %w", id, err)
	}
	if err := m.build(ctx, h, seg, rec, true); err != nil {
		return Attachment{}, fmt.Errorf("instance %q: %w", id, err)
	}
	m.log.Info("instance attached", "instance", id, "segment", segName, "ip", rec.IP, "netns", rec.NetNS, "veth", rec.HostVeth)
	return m.attachment(rec), nil
}

// claim gives a new attachment an address on seg and records it, on disk before the host
// changes (rv undoes both): a crash from here on leaves a record that the next attach
// completes and Detach or Cleanup removes. link is the host-side interface the attachment
// makes, which must not be a segment's bridge.
func (m *Manager) claim(rv *revert, seg *segment, rec attachRecord, link string) (attachRecord, error) {
	id := rec.Instance
	for _, o := range m.segments {
		if o.Bridge == link {
			return rec, fmt.Errorf("%w: instance %q: %s name %s is the bridge of segment %q; rename the segment",
				ErrConflict, id, rec.Kind, link, o.Name)
		}
	}
	prevLast := seg.ipam.last
	ip, err := seg.ipam.allocate(id)
	if err != nil {
		return rec, fmt.Errorf("segment %q: attach instance %q: %w", seg.Name, id, err)
	}
	rec.IP = ip
	m.attachments[id] = rec
	if err := m.commit(rv, "address "+ip.String(), func() {
		delete(m.attachments, id)
		seg.ipam.release(ip)
		seg.ipam.last = prevLast
	}); err != nil {
		return rec, fmt.Errorf("instance %q: %w", id, err)
	}
	return rec, nil
}

// checkSame refuses to attach an instance recorded as rec to segName as a
// kind: it must stay where and what it is until it is detached.
func checkSame(rec attachRecord, segName string, kind Kind) error {
	if rec.Segment != segName {
		return fmt.Errorf("%w: instance %q is attached to segment %q; detach it before attaching it to %q",
			ErrConflict, rec.Instance, rec.Segment, segName)
	}
	if rec.Kind != kind {
		return fmt.Errorf("%w: instance %q is attached to segment %q with a %s; detach it before attaching it with a %s",
			ErrConflict, rec.Instance, rec.Segment, rec.Kind, kind)
	}
	return nil
}

// build creates rec's veth pair on seg and configures both ends. The
// instance end goes into a new namespace when fresh is set or none is
// mounted at rec.NetNS; otherwise into the mounted one, replacing any eth0
// there. On failure it undoes what it did, newest first; the bridge stays.
func (m *Manager) build(ctx context.Context, h *netlink.Handle, seg *segment, rec attachRecord, fresh bool) (err error) {
	var rv revert
	defer rv.undoOn(&err)
	if _, err := m.ensureBridge(h, seg.Segment); err != nil {
		return err
	}
	br, err := h.LinkByName(seg.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", seg.Bridge, err)
	}

	if err := m.step("netns"); err != nil {
		return err
	}
	if fresh || !isNetNSMount(rec.NetNS) {
		if err := removeNetNS(rec.NetNS); err != nil { // a stale file
			return err
		}
		if err := createNetNS(rec.NetNS); err != nil {
			return err
		}
		rv.add("network namespace "+rec.NetNS, func() error { return removeNetNS(rec.NetNS) })
	}
	ns, err := openNetNS(rec.NetNS)
	if err != nil {
		return err
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", rec.NetNS, err)
	}
	defer nh.Close()
	if old, err := linkByName(nh, instanceIf); err != nil {
		return err
	} else if old != nil {
		if err := nh.LinkDel(old); err != nil {
			return fmt.Errorf("delete the old %s in %s: %w", instanceIf, rec.NetNS, err)
		}
	}

	if err := m.step("veth"); err != nil {
		return err
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: rec.HostVeth},
		PeerName:         instanceIf,
		PeerHardwareAddr: macFor(rec.IP),
		PeerNamespace:    netlink.NsFd(int(ns)),
	}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth pair %s/%s: %w", rec.HostVeth, instanceIf, err)
	}
	rv.add("veth "+rec.HostVeth, func() error { return deleteLink(h, rec.HostVeth, "veth") })
	hostEnd, err := h.LinkByName(rec.HostVeth)
	if err != nil {
		return fmt.Errorf("look up new veth %s: %w", rec.HostVeth, err)
	}
	if err := h.LinkSetMaster(hostEnd, br); err != nil {
		return fmt.Errorf("add veth %s to bridge %s: %w", rec.HostVeth, seg.Bridge, err)
	}
	if err := h.LinkSetUp(hostEnd); err != nil {
		return fmt.Errorf("bring veth %s up: %w", rec.HostVeth, err)
	}

	if err := m.step("address"); err != nil {
		return err
	}
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("look up lo in %s: %w", rec.NetNS, err)
	}
	if err := nh.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring lo up in %s: %w", rec.NetNS, err)
	}
	eth, err := nh.LinkByName(instanceIf)
	if err != nil {
		return fmt.Errorf("look up %s in %s: %w", instanceIf, rec.NetNS, err)
	}
	if err := nh.AddrReplace(eth, ipNet(rec.IP, seg.Subnet)); err != nil {
		return fmt.Errorf("give %s the address %s: %w", instanceIf, rec.IP, err)
	}
	if err := nh.LinkSetUp(eth); err != nil {
		return fmt.Errorf("bring %s up in %s: %w", instanceIf, rec.NetNS, err)
	}

	if err := m.step("route"); err != nil {
		return err
	}
	route := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: seg.Gateway.AsSlice()}
	if err := nh.RouteReplace(route); err != nil {
		return fmt.Errorf("default route via %s in %s: %w", seg.Gateway, rec.NetNS, err)
	}
	return waitOperUp(ctx, h, rec.HostVeth, nh, instanceIf)
}

// verify checks that rec is whole on the host: namespace mounted, host veth
// up on seg's bridge, eth0 up with the address, default route via the
// gateway. It returns the first problem it finds.
func (m *Manager) verify(h *netlink.Handle, seg *segment, rec attachRecord) error {
	ns, err := openNetNS(rec.NetNS)
	if err != nil {
		return err
	}
	defer ns.Close()
	br, err := verifyBridge(h, seg)
	if err != nil {
		return err
	}
	hostEnd, err := linkByName(h, rec.HostVeth)
	switch {
	case err != nil:
		return err
	case hostEnd == nil:
		return fmt.Errorf("veth %s is missing", rec.HostVeth)
	case hostEnd.Type() != "veth":
		return fmt.Errorf("link %s is a %s, not a veth", rec.HostVeth, hostEnd.Type())
	case hostEnd.Attrs().MasterIndex != br.Attrs().Index:
		return fmt.Errorf("veth %s is not a port of bridge %s", rec.HostVeth, seg.Bridge)
	case !isUp(hostEnd):
		return fmt.Errorf("veth %s is down", rec.HostVeth)
	}
	nh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", rec.NetNS, err)
	}
	defer nh.Close()
	eth, err := linkByName(nh, instanceIf)
	switch {
	case err != nil:
		return err
	case eth == nil:
		return fmt.Errorf("%s is missing in %s", instanceIf, rec.NetNS)
	case !isUp(eth):
		return fmt.Errorf("%s is down in %s", instanceIf, rec.NetNS)
	}
	if ok, err := hasAddr(nh, eth, rec.IP, seg.Subnet); err != nil || !ok {
		return errors.Join(fmt.Errorf("%s lacks the address %s", instanceIf, rec.IP), err)
	}
	routes, err := nh.RouteList(eth, netlink.FAMILY_V4)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list routes in %s: %w", rec.NetNS, err)
	}
	for _, r := range routes {
		gw, _ := netip.AddrFromSlice(r.Gw)
		if r.Dst != nil && gw.Unmap() == seg.Gateway {
			if ones, _ := r.Dst.Mask.Size(); ones == 0 {
				return nil
			}
		}
	}
	return fmt.Errorf("no default route via %s in %s", seg.Gateway, rec.NetNS)
}

// verifyBridge returns seg's bridge if it is up and holds the gateway
// address, or else what is wrong with it.
func verifyBridge(h *netlink.Handle, seg *segment) (netlink.Link, error) {
	br, err := linkByName(h, seg.Bridge)
	switch {
	case err != nil:
		return nil, err
	case br == nil:
		return nil, fmt.Errorf("bridge %s is missing", seg.Bridge)
	case !isUp(br):
		return nil, fmt.Errorf("bridge %s is down", seg.Bridge)
	}
	if ok, err := hasAddr(h, br, seg.Gateway, seg.Subnet); err != nil || !ok {
		return nil, errors.Join(fmt.Errorf("bridge %s lacks the gateway address %s", seg.Bridge, seg.Gateway), err)
	}
	return br, nil
}

// teardown removes what rec has on the host, whichever parts exist: the
// veth pair and namespace, or the tap.
func (m *Manager) teardown(h *netlink.Handle, rec attachRecord) error {
	if rec.Kind == KindTap {
		return deleteLink(h, rec.Tap, tapType)
	}
	// The veth first: deleting the host end deletes eth0 at once, while a
	// namespace is freed only when its last user lets go.
	return errors.Join(deleteLink(h, rec.HostVeth, "veth"), removeNetNS(rec.NetNS))
}

// Detach removes instance id's veth pair and network namespace, or its tap,
// and frees its address. It is idempotent: an instance with no attachment is
// not an error (leftovers under its names from an interrupted Attach or
// AttachTap are removed). An instance attached to another segment is
// ErrConflict.
func (m *Manager) Detach(ctx context.Context, segName, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkSegmentName(segName); err != nil {
		return err
	}
	if err := checkInstanceID(id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := m.opts.Host.Netlink()
	if err != nil {
		return err
	}
	defer h.Close()
	rec, ok := m.attachments[id]
	if !ok {
		veth := attachRecord{Kind: KindVeth, HostVeth: vethName(m.opts.BridgePrefix, id), NetNS: filepath.Join(m.opts.NetNSDir, id)}
		tap := attachRecord{Kind: KindTap, Tap: tapName(m.opts.BridgePrefix, id)}
		if err := errors.Join(m.teardown(h, veth), m.teardown(h, tap), m.syncGuard()); err != nil {
			return fmt.Errorf("instance %q: %w", id, err)
		}
		return nil
	}
	if rec.Segment != segName {
		return fmt.Errorf("%w: instance %q is attached to segment %q, not %q", ErrConflict, id, rec.Segment, segName)
	}
	return m.detach(h, rec)
}

// detach tears rec down and forgets it; m.mu is held.
func (m *Manager) detach(h *netlink.Handle, rec attachRecord) error {
	if err := m.teardown(h, rec); err != nil {
		return fmt.Errorf("instance %q: %w", rec.Instance, err)
	}
	seg := m.segments[rec.Segment]
	seg.ipam.release(rec.IP)
	delete(m.attachments, rec.Instance)
	if err := m.save(); err != nil {
		// Keep memory as the file says; a retry finds nothing to tear
		// down and saves again.
		m.attachments[rec.Instance] = rec
		_ = seg.ipam.reserve(rec.IP, rec.Instance)
		return fmt.Errorf("instance %q: %w", rec.Instance, err)
	}
	// The port is gone; so is its binding. Should this fail, the binding
	// stays until the next change (a stale binding of a port that no longer
	// exists admits nothing).
	if err := m.syncGuard(); err != nil {
		return fmt.Errorf("instance %q: %w", rec.Instance, err)
	}
	m.log.Info("instance detached", "instance", rec.Instance, "segment", rec.Segment, "kind", rec.Kind, "ip", rec.IP)
	return nil
}
