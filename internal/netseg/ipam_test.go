package netseg

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestIPAMAllocate(t *testing.T) {
	p := newIPAM(netip.MustParsePrefix("10.213.9.0/29"))
	if p.size() != 5 {
		t.Fatalf("size = %d, want 5", p.size())
	}
	var got []string
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		a, err := p.allocate(id)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
	}
	if want := "10.213.9.2 10.213.9.3 10.213.9.4 10.213.9.5 10.213.9.6"; strings.Join(got, " ") != want {
		t.Errorf("allocated %v, want %s", got, want)
	}
	_, err := p.allocate("f")
	if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "10.213.9.0/29 has no free address (all 5 are in use)") {
		t.Errorf("full subnet: %v", err)
	}
	// Freed addresses come back in round-robin order, wrapping at the end.
	p.release(mustAddr("10.213.9.5"))
	p.release(mustAddr("10.213.9.3"))
	for _, want := range []string{"10.213.9.3", "10.213.9.5"} {
		a, err := p.allocate("g")
		if err != nil || a.String() != want {
			t.Errorf("allocate = %v, %v; want %s", a, err, want)
		}
	}
	// After a release the next address is not the one just freed.
	p.release(mustAddr("10.213.9.2"))
	p.release(mustAddr("10.213.9.6"))
	if a, _ := p.allocate("h"); a.String() != "10.213.9.6" {
		t.Errorf("allocate after .5 = %s, want 10.213.9.6", a)
	}
	if a, _ := p.allocate("i"); a.String() != "10.213.9.2" {
		t.Errorf("allocate after wrap = %s, want 10.213.9.2", a)
	}
}

func TestIPAMReserve(t *testing.T) {
	p := newIPAM(netip.MustParsePrefix("10.213.4.0/24"))
	if err := p.reserve(mustAddr("10.213.4.7"), "a"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr, owner string
		err         error
	}{
		{"10.213.4.7", "a", nil}, // again, same owner
		{"10.213.4.7", "b", ErrConflict},
		{"10.213.4.0", "b", ErrInvalid},   // network
		{"10.213.4.1", "b", ErrInvalid},   // gateway
		{"10.213.4.255", "b", ErrInvalid}, // broadcast
		{"10.213.5.2", "b", ErrInvalid},   // outside
		{"10.213.4.254", "b", nil},
	}
	for _, tt := range tests {
		if err := p.reserve(mustAddr(tt.addr), tt.owner); !errors.Is(err, tt.err) {
			t.Errorf("reserve(%s, %s) = %v, want %v", tt.addr, tt.owner, err, tt.err)
		}
	}
	if p.reserve(netip.Addr{}, "c") == nil {
		t.Error("reserve of the zero address succeeded")
	}
}

// TestIPAMProperties allocates and frees at random (fixed seed) and checks
// that no address is given twice, every address is an instance address of
// the subnet, and allocation fails only when the subnet is full.
func TestIPAMProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for _, subnet := range []string{"10.213.0.0/30", "10.213.1.0/29", "10.213.2.0/27", "10.213.3.0/24"} {
		p := newIPAM(netip.MustParsePrefix(subnet))
		held := map[netip.Addr]bool{}
		var order []netip.Addr
		for range 3000 {
			if r.IntN(3) > 0 || len(order) == 0 {
				a, err := p.allocate("x")
				if len(held) == p.size() {
					if !errors.Is(err, ErrExhausted) {
						t.Fatalf("%s: full, allocate = %v, %v", subnet, a, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %d of %d held, allocate: %v", subnet, len(held), p.size(), err)
				}
				if held[a] || !p.usable(a) || a == gatewayOf(p.subnet) {
					t.Fatalf("%s: allocated %s (held %v, usable %v)", subnet, a, held[a], p.usable(a))
				}
				held[a] = true
				order = append(order, a)
				continue
			}
			i := r.IntN(len(order))
			p.release(order[i])
			delete(held, order[i])
			order = append(order[:i], order[i+1:]...)
		}
		if len(p.used) != len(held) {
			t.Errorf("%s: ipam holds %d, want %d", subnet, len(p.used), len(held))
		}
	}
}

func TestCheckSubnet(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		hint string
	}{
		{"10.213.4.0/24", true, ""},
		{"10.213.0.0/16", true, ""},
		{"10.213.4.0/30", true, ""},
		{"10.213.4.1/24", false, "did you mean 10.213.4.0/24"},
		{"10.213.4.0/31", false, "between a /16 and a /30"},
		{"10.212.0.0/15", false, "between a /16 and a /30"},
		{"fd00::/64", false, "not an IPv4 prefix"},
	}
	for _, tt := range tests {
		err := checkSubnet(netip.MustParsePrefix(tt.in))
		if (err == nil) != tt.ok || (err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.hint))) {
			t.Errorf("checkSubnet(%s) = %v, want ok %v and %q", tt.in, err, tt.ok, tt.hint)
		}
	}
}

func TestAllocSubnet(t *testing.T) {
	pfx := netip.MustParsePrefix
	pool := pfx("10.213.0.0/16")
	tests := []struct {
		name  string
		pool  netip.Prefix
		taken []netip.Prefix
		want  string // or the error text
	}{
		{"empty", pool, nil, "10.213.0.0/24"},
		{"next", pool, []netip.Prefix{pfx("10.213.0.0/24")}, "10.213.1.0/24"},
		{"hole", pool, []netip.Prefix{pfx("10.213.0.0/24"), pfx("10.213.2.0/24")}, "10.213.1.0/24"},
		{"given larger", pool, []netip.Prefix{pfx("10.213.0.0/23")}, "10.213.2.0/24"},
		{"given smaller", pool, []netip.Prefix{pfx("10.213.0.128/25")}, "10.213.1.0/24"},
		{"outside the pool", pool, []netip.Prefix{pfx("10.214.0.0/24")}, "10.213.0.0/24"},
		{"pool is one /24", pfx("10.213.7.0/24"), nil, "10.213.7.0/24"},
		{"exhausted", pfx("10.213.0.0/23"), []netip.Prefix{pfx("10.213.0.0/24"), pfx("10.213.1.0/24")},
			"pool 10.213.0.0/23 has no free /24 (all 2 are used by segments or overlap the host's routes and addresses)"},
	}
	for _, tt := range tests {
		got, err := allocSubnet(tt.pool, tt.taken)
		if err != nil {
			if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
			}
			continue
		}
		if got.String() != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}
