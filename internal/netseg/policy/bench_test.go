package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables"
)

// largePolicy is segments segments, each admitting flows/segments flows
// from the segments after it (one in ten on every port, the others on one
// TCP or UDP port), half of them with egress, and publishes published
// ports of three targets each.
func largePolicy(segments, flows, published int) Policy {
	var p Policy
	for i := range segments {
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + i/256), byte(i % 256), 0}), 24)
		s := Segment{
			Name:    fmt.Sprintf("seg%d", i),
			Bridge:  fmt.Sprintf("st-seg%d", i),
			Subnet:  subnet,
			Gateway: subnet.Addr().Next(),
			Egress:  i%2 == 0,
		}
		for k := range flows / segments {
			a := Allow{From: fmt.Sprintf("seg%d", (i+1+k)%segments)}
			if k%10 != 0 {
				a.Ports = []Port{{uint16(1000 + k), []string{"tcp", "udp"}[k%2]}}
			}
			s.Allow = append(s.Allow, a)
		}
		p.Segments = append(p.Segments, s)
	}
	for i := range published {
		s := p.Segments[i%segments]
		pub := Publish{HostPort: uint16(30000 + i), Protocol: "tcp", Segment: s.Name}
		for k := range 3 {
			pub.Targets = append(pub.Targets, netip.AddrPortFrom(netip.AddrFrom4([4]byte{s.Subnet.Addr().As4()[0], s.Subnet.Addr().As4()[1], s.Subnet.Addr().As4()[2], byte(10 + k)}), 8080))
		}
		p.Publish = append(p.Publish, pub)
	}
	return p
}

// TestApplyLarge applies 200 segments with 2,000 allowed flows and 20
// published ports, the size the benchmarks measure.
func TestApplyLarge(t *testing.T) {
	ns := newNetNS(t)
	c := conn(t, ns)
	r := mustApply(t, c, largePolicy(200, 2000, 20))
	checkCurrent(t, c, r)
	t.Log(r.Summary())
}

// TestLargeBatches: a connection with the system's default socket buffers
// cannot send 10,000 flows in one batch, and says what to do; one made
// with LargeBatches can.
func TestLargeBatches(t *testing.T) {
	ns := newNetNS(t)
	small, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	conn(t, ns) // skips when there is no nf_tables
	old := mustApply(t, small, samplePolicy())
	r, err := Compile(largePolicy(250, 10000, 50))
	if err != nil {
		t.Fatal(err)
	}
	err = r.Apply(small)
	if err == nil || !strings.Contains(err.Error(), "LargeBatches") {
		t.Fatalf("Apply of 10,000 flows through default buffers: %v, want an error naming LargeBatches", err)
	}
	checkCurrent(t, small, old)
	c := conn(t, ns)
	if err := r.Apply(c); err != nil {
		t.Fatal(err)
	}
	checkCurrent(t, c, r)
}

func BenchmarkCompile(b *testing.B) {
	p := largePolicy(200, 2000, 20)
	for b.Loop() {
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompileApply(b *testing.B) {
	c := conn(b, newNetNS(b))
	p := largePolicy(200, 2000, 20)
	for b.Loop() {
		r, err := Compile(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Apply(c); err != nil {
			b.Fatal(err)
		}
	}
}
