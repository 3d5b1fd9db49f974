package netseg

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Subnet sizes a segment may have: a /16 at most (65533 addresses for
// instances), a /30 at least (one).
const (
	minSubnetBits = 16
	maxSubnetBits = 30
	// segmentBits is the size of subnets allocated from the pool.
	segmentBits = 24
)

// ipam hands out the addresses of one segment's subnet. It is not safe for
// concurrent use; the Manager serialises access.
type ipam struct {
	subnet netip.Prefix
	used   map[netip.Addr]string // address -> instance ID
	// last is the address given out most recently; the next search
	// starts after it. Zero before the first allocation.
	last netip.Addr
}

func newIPAM(subnet netip.Prefix) *ipam {
	return &ipam{subnet: subnet, used: map[netip.Addr]string{}}
}

// gateway is the subnet's first address, held by the bridge.
func gatewayOf(subnet netip.Prefix) netip.Addr { return subnet.Addr().Next() }

// firstHost and lastHost bound the addresses given to instances: after
// the gateway, before the broadcast address.
func (p *ipam) firstHost() netip.Addr { return gatewayOf(p.subnet).Next() }
func (p *ipam) lastHost() netip.Addr  { return broadcastOf(p.subnet).Prev() }

// size is the number of addresses instances can have.
func (p *ipam) size() int { return 1<<(32-p.subnet.Bits()) - 3 }

// usable reports whether a may be given to an instance.
func (p *ipam) usable(a netip.Addr) bool {
	return a.Is4() && p.subnet.Contains(a) && a.Compare(p.firstHost()) >= 0 && a.Compare(p.lastHost()) <= 0
}

// allocate gives the next free address after the last one given, wrapping
// from the end of the subnet to its start, and records owner as its holder.
func (p *ipam) allocate(owner string) (netip.Addr, error) {
	a := p.firstHost()
	if p.usable(p.last) {
		a = p.last.Next()
	}
	for range p.size() {
		if !p.usable(a) {
			a = p.firstHost() // wrap
		}
		if _, taken := p.used[a]; !taken {
			p.used[a] = owner
			p.last = a
			return a, nil
		}
		a = a.Next()
	}
	return netip.Addr{}, fmt.Errorf("%w: subnet %s has no free address (all %d are in use); detach an instance or give the segment a larger subnet",
		ErrExhausted, p.subnet, p.size())
}

// reserve records that owner holds a (restoring state from disk).
func (p *ipam) reserve(a netip.Addr, owner string) error {
	if !p.usable(a) {
		return fmt.Errorf("%w: address %s is not an instance address of subnet %s", ErrInvalid, a, p.subnet)
	}
	if other, taken := p.used[a]; taken && other != owner {
		return fmt.Errorf("%w: address %s is held by instance %q", ErrConflict, a, other)
	}
	p.used[a] = owner
	return nil
}

// release frees a; freeing a free address does nothing.
func (p *ipam) release(a netip.Addr) { delete(p.used, a) }

// broadcastOf is the last address of an IPv4 subnet.
func broadcastOf(subnet netip.Prefix) netip.Addr {
	n := u32(subnet.Addr()) | (1<<(32-subnet.Bits()) - 1)
	return addr4(n)
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func addr4(n uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	return netip.AddrFrom4(b)
}

// checkSubnet accepts an IPv4 network address with a prefix length from
// minSubnetBits to maxSubnetBits.
func checkSubnet(s netip.Prefix) error {
	switch {
	case !s.IsValid() || !s.Addr().Is4():
		return fmt.Errorf("%w: subnet %s is not an IPv4 prefix (like 10.213.4.0/24)", ErrInvalid, s)
	case s.Masked() != s:
		return fmt.Errorf("%w: subnet %s has host bits set; did you mean %s?", ErrInvalid, s, s.Masked())
	case s.Bits() < minSubnetBits || s.Bits() > maxSubnetBits:
		return fmt.Errorf("%w: subnet %s must be between a /%d and a /%d", ErrInvalid, s, minSubnetBits, maxSubnetBits)
	}
	return nil
}

// allocSubnet returns the lowest /24 of pool that overlaps none of taken.
func allocSubnet(pool netip.Prefix, taken []netip.Prefix) (netip.Prefix, error) {
	n := 1 << (segmentBits - pool.Bits())
	base := u32(pool.Addr())
next:
	for i := range n {
		cand := netip.PrefixFrom(addr4(base+uint32(i)<<(32-segmentBits)), segmentBits)
		for _, t := range taken {
			if cand.Overlaps(t) {
				continue next
			}
		}
		return cand, nil
	}
	return netip.Prefix{}, fmt.Errorf("%w: pool %s has no free /%d (all %d are used by segments or overlap the host's routes and addresses); delete a segment or configure a larger pool",
		ErrExhausted, pool, segmentBits, n)
}
