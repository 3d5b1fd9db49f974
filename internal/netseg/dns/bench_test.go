package dns

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// benchRecords: 100 workloads with 3 instances each on front.
func benchRecords() Records {
	names := map[string][]netip.Addr{}
	for w := range 100 {
		var all []netip.Addr
		for i := range 3 {
			a := netip.AddrFrom4([4]byte{10, 213, 1, byte(2 + w*2 + i)})
			names[fmt.Sprintf("w%d-%d", w, i)] = []netip.Addr{a}
			all = append(all, a)
		}
		names[fmt.Sprintf("w%d", w)] = all
	}
	return Records{Names: map[string]map[string][]netip.Addr{"front": names, "back": {}}}
}

// BenchmarkQueryUDP: A lookups over UDP from one client, one query at a
// time, as an instance's resolver sends them.
func BenchmarkQueryUDP(b *testing.B) {
	n := newTestNet(b)
	n.addBridge(frontGW + "/24")
	s := n.server(nil)
	s.Set(benchRecords())
	n.serve(s, "front", frontGW)
	co, err := n.dial("udp", frontGW)
	if err != nil {
		b.Fatal(err)
	}
	defer co.Close()
	c := mdns.Client{Net: "udp", Timeout: 2 * time.Second}
	m := new(mdns.Msg)
	m.SetQuestion("w42.", mdns.TypeA)
	for b.Loop() {
		m.Id = mdns.Id()
		resp, _, err := c.ExchangeWithConn(m, co)
		if err != nil {
			b.Fatal(err)
		}
		if len(resp.Answer) != 3 {
			b.Fatalf("%d answers, want 3", len(resp.Answer))
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}

// BenchmarkReply: the server's own work per query, without sockets.
func BenchmarkReply(b *testing.B) {
	s := New(Options{Upstreams: []netip.AddrPort{}})
	s.Set(benchRecords())
	m := new(mdns.Msg)
	m.SetQuestion("w42.front.", mdns.TypeA)
	ctx := context.Background()
	for b.Loop() {
		resp := s.reply(ctx, "front", m, false)
		fit(resp, m, false)
		if _, err := resp.Pack(); err != nil {
			b.Fatal(err)
		}
	}
}
