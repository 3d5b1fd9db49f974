package netseg

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
)

// EnsureSegment makes sure segment name exists with its bridge up and
// holding the gateway address, and returns it. subnet is the segment's
// subnet (an IPv4 /16 to /30), or zero for the lowest free /24 of the pool.
// It is idempotent: for an existing segment it repairs the bridge and
// returns the recorded subnet; a different non-zero subnet is ErrConflict
// (delete the segment to change it), as is a subnet that overlaps another
// segment's.
func (m *Manager) EnsureSegment(ctx context.Context, name string, subnet netip.Prefix) (_ Segment, err error) {
	if err := ctx.Err(); err != nil {
		return Segment{}, err
	}
	if err := checkSegmentName(name); err != nil {
		return Segment{}, err
	}
	if subnet.IsValid() {
		if err := checkSubnet(subnet); err != nil {
			return Segment{}, fmt.Errorf("segment %q: %w", name, err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.segments[name]; ok && subnet.IsValid() && subnet != s.Subnet {
		return Segment{}, fmt.Errorf("%w: segment %q has subnet %s, not %s; delete the segment to change its subnet",
			ErrConflict, name, s.Subnet, subnet)
	}
	h, err := m.opts.Host.Netlink()
	if err != nil {
		return Segment{}, err
	}
	defer h.Close()

	var rv revert
	defer rv.undoOn(&err)
	s, ok := m.segments[name]
	if !ok {
		if s, err = m.newSegment(&rv, h, name, subnet); err != nil {
			return Segment{}, err
		}
	}
	if err := m.ensureForwarding(); err != nil {
		return Segment{}, err
	}
	created, err := m.ensureBridge(h, s.Segment)
	if err != nil {
		return Segment{}, fmt.Errorf("segment %q: %w", name, err)
	}
	if created {
		m.log.Info("bridge created", "segment", name, "bridge", s.Bridge, "subnet", s.Subnet, "gateway", s.Gateway)
	}
	return s.Segment, nil
}

// newSegment picks the subnet and bridge name of a new segment and records
// it; m.mu is held. A subnet taken from the pool overlaps none of the Host
// namespace's routes and addresses; a given one that does is ErrConflict.
func (m *Manager) newSegment(rv *revert, h *netlink.Handle, name string, subnet netip.Prefix) (*segment, error) {
	nets, err := m.hostNets(h)
	if err != nil {
		return nil, fmt.Errorf("segment %q: %w", name, err)
	}
	if what := hostOverlap(nets, subnet); subnet.IsValid() && what != "" {
		return nil, fmt.Errorf("%w: segment %q: subnet %s overlaps the host's %s; choose a subnet the host does not use, or leave it empty to get one from the pool",
			ErrConflict, name, subnet, what)
	}
	taken := make([]netip.Prefix, 0, len(m.segments)+len(nets))
	for _, o := range m.segments {
		taken = append(taken, o.Subnet)
	}
	for _, n := range nets {
		taken = append(taken, n.prefix)
	}
	if !subnet.IsValid() {
		var err error
		if subnet, err = allocSubnet(m.opts.Pool, taken); err != nil {
			return nil, fmt.Errorf("segment %q: %w", name, err)
		}
	}
	br := bridgeName(m.opts.BridgePrefix, name)
	for _, o := range m.sortedSegments() {
		if o.Subnet.Overlaps(subnet) {
			return nil, fmt.Errorf("%w: segment %q: subnet %s overlaps segment %q (%s); choose a subnet that overlaps no other segment",
				ErrConflict, name, subnet, o.Name, o.Subnet)
		}
		if o.Bridge == br {
			return nil, fmt.Errorf("%w: segment %q: bridge name %s is taken by segment %q; choose another segment name",
				ErrConflict, name, br, o.Name)
		}
	}
	for _, a := range m.attachments {
		if a.HostVeth == br || a.Tap == br {
			return nil, fmt.Errorf("%w: segment %q: bridge name %s is the %s of instance %q; choose another segment name",
				ErrConflict, name, br, a.Kind, a.Instance)
		}
	}
	s := &segment{Segment{Name: name, Subnet: subnet, Gateway: gatewayOf(subnet), Bridge: br}, newIPAM(subnet)}
	m.segments[name] = s
	if err := m.commit(rv, "record of segment "+name, func() { delete(m.segments, name) }); err != nil {
		return nil, fmt.Errorf("segment %q: %w", name, err)
	}
	m.log.Info("segment created", "segment", name, "subnet", subnet, "bridge", br)
	return s, nil
}

// sortedSegments lists the segments by name, so that messages that pick
// one are deterministic; m.mu is held.
func (m *Manager) sortedSegments() []*segment {
	out := make([]*segment, 0, len(m.segments))
	for _, s := range m.segments {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *segment) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ensureBridge makes sure seg's bridge exists, holds the gateway address
// and is up. It reports whether it created the bridge; a bridge it created
// is deleted again if a later step fails.
func (m *Manager) ensureBridge(h *netlink.Handle, seg Segment) (created bool, err error) {
	if err := m.step("bridge"); err != nil {
		return false, err
	}
	var rv revert
	defer rv.undoOn(&err)
	l, err := linkByName(h, seg.Bridge)
	if err != nil {
		return false, err
	}
	if l != nil && l.Type() != "bridge" {
		return false, fmt.Errorf("%w: link %s is a %s, not a bridge; strata needs the name for segment %q: rename or delete that link",
			ErrConflict, seg.Bridge, l.Type(), seg.Name)
	}
	if l == nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: seg.Bridge, HardwareAddr: macFor(seg.Gateway)}}
		if err := h.LinkAdd(br); err != nil {
			return false, fmt.Errorf("create bridge %s: %w", seg.Bridge, err)
		}
		created = true
		rv.add("bridge "+seg.Bridge, func() error { return deleteLink(h, seg.Bridge, "bridge") })
		if l, err = h.LinkByName(seg.Bridge); err != nil {
			return false, fmt.Errorf("look up new bridge %s: %w", seg.Bridge, err)
		}
	}
	if err := h.AddrReplace(l, ipNet(seg.Gateway, seg.Subnet)); err != nil {
		return false, fmt.Errorf("give bridge %s the gateway address %s: %w", seg.Bridge, seg.Gateway, err)
	}
	if err := m.strictReversePath(seg.Bridge); err != nil {
		return false, err
	}
	if err := h.LinkSetUp(l); err != nil {
		return false, fmt.Errorf("bring bridge %s up: %w", seg.Bridge, err)
	}
	return created, nil
}

// strictReversePath sets net.ipv4.conf.<bridge>.rp_filter to 1 in the Host
// namespace: the host routes a packet that arrives on the bridge only if
// its source address is routed back through the same bridge, so a packet
// from one segment with another segment's source address (or any other
// address the host does not route there) is dropped. The kernel applies
// the larger of this and net.ipv4.conf.all.rp_filter; the port guard
// (guard.go) drops such packets earlier still.
func (m *Manager) strictReversePath(bridge string) error {
	knob := "/proc/sys/net/ipv4/conf/" + bridge + "/rp_filter"
	err := m.opts.Host.Do(func() error {
		cur, err := os.ReadFile(knob)
		if err == nil && strings.TrimSpace(string(cur)) == "1" {
			return nil
		}
		return os.WriteFile(knob, []byte("1\n"), 0o600) // the mode is unused: the file exists
	})
	if err != nil {
		return fmt.Errorf("strict reverse-path filter on bridge %s: %w", bridge, err)
	}
	return nil
}

// DeleteSegment removes segment name and its bridge. A segment that still
// has attachments is ErrConflict; an unknown segment is not an error.
func (m *Manager) DeleteSegment(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.segments[name]
	if !ok {
		return nil
	}
	var users []string
	for _, a := range m.attachments {
		if a.Segment == name {
			users = append(users, a.Instance)
		}
	}
	if len(users) > 0 {
		slices.Sort(users)
		return fmt.Errorf("%w: segment %q still has %d attached instances (%s); detach them first",
			ErrConflict, name, len(users), strings.Join(users, ", "))
	}
	h, err := m.opts.Host.Netlink()
	if err != nil {
		return err
	}
	defer h.Close()
	if err := deleteLink(h, s.Bridge, "bridge"); err != nil {
		return fmt.Errorf("segment %q: %w", name, err)
	}
	delete(m.segments, name)
	if err := m.save(); err != nil {
		m.segments[name] = s
		return fmt.Errorf("segment %q: %w", name, err)
	}
	m.log.Info("segment deleted", "segment", name, "bridge", s.Bridge)
	return nil
}

// ensureForwarding sets net.ipv4.ip_forward in the host namespace once, if
// Options.Forwarding asks for it; m.mu is held.
func (m *Manager) ensureForwarding() error {
	if !m.opts.Forwarding || m.forwarding {
		return nil
	}
	const knob = "/proc/sys/net/ipv4/ip_forward"
	err := m.opts.Host.Do(func() error {
		cur, err := os.ReadFile(knob)
		if err == nil && strings.TrimSpace(string(cur)) == "1" {
			return nil
		}
		return os.WriteFile(knob, []byte("1\n"), 0o600) // the mode is unused: the file exists
	})
	if err != nil {
		return fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	m.forwarding = true
	m.log.Info("forwarding enabled", "sysctl", "net.ipv4.ip_forward")
	return nil
}
