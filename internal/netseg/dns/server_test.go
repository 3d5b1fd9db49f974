package dns

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"strata.dev/strata/internal/netseg"
)

// Two segments, as the tests use them: front on 10.213.1.0/24 and back on
// 10.213.2.0/24, each with its bridge and gateway.
const (
	frontGW = "10.213.1.1"
	backGW  = "10.213.2.1"
)

func ips(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

// testRecords: web has two instances on front, db one on back; back also
// has an instance of a workload without a running one (idle: no addresses).
func testRecords() Records {
	return Records{
		Names: map[string]map[string][]netip.Addr{
			"front": {
				"web":   ips("10.213.1.10", "10.213.1.11"),
				"web-0": ips("10.213.1.10"),
				"web-1": ips("10.213.1.11"),
			},
			"back": {
				"db":   ips("10.213.2.10"),
				"db-0": ips("10.213.2.10"),
				"idle": nil,
			},
			"empty": {},
		},
		Egress: map[string]bool{"front": false, "back": false},
	}
}

// twoSegments starts a namespace with front's and back's bridges and a
// server for both, answering from testRecords.
func twoSegments(t *testing.T, edit func(*Options)) (*testNet, *Server) {
	t.Helper()
	n := newTestNet(t)
	n.addBridge(frontGW+"/24", "10.213.1.2/24")
	n.addBridge(backGW + "/24")
	s := n.server(edit)
	s.Set(testRecords())
	n.serve(s, "front", frontGW)
	n.serve(s, "back", backGW)
	return n, s
}

// answers lists the addresses of resp's A and AAAA records, sorted.
func answers(resp *mdns.Msg) []string {
	var out []string
	for _, rr := range resp.Answer {
		switch rr := rr.(type) {
		case *mdns.A:
			out = append(out, rr.A.String())
		case *mdns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	slices.Sort(out)
	return out
}

func TestStrataNames(t *testing.T) {
	n, _ := twoSegments(t, nil)
	tests := []struct {
		name   string
		server string
		qname  string
		qtype  uint16
		rcode  int
		want   []string
	}{
		{"workload", frontGW, "web.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.213.1.10", "10.213.1.11"}},
		{"instance", frontGW, "web-1.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.213.1.11"}},
		{"workload with its segment", frontGW, "web.front.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.213.1.10", "10.213.1.11"}},
		{"other segment", frontGW, "db.back.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.213.2.10"}},
		{"other segment's instance", frontGW, "db-0.back.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.213.2.10"}},
		{"upper case", frontGW, "WeB.FrOnT.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.213.1.10", "10.213.1.11"}},
		{"upper case, one label", backGW, "DB.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.213.2.10"}},
		{"ANY", backGW, "db.", mdns.TypeANY, mdns.RcodeSuccess, []string{"10.213.2.10"}},
		{"AAAA of a known name", frontGW, "web.", mdns.TypeAAAA, mdns.RcodeSuccess, nil},
		{"MX of a known name", frontGW, "web.", mdns.TypeMX, mdns.RcodeSuccess, nil},
		{"name without instances", backGW, "idle.", mdns.TypeA, mdns.RcodeSuccess, nil},
		{"name of another segment, one label", frontGW, "db.", mdns.TypeA, mdns.RcodeNameError, nil},
		{"unknown name", frontGW, "nope.", mdns.TypeA, mdns.RcodeNameError, nil},
		{"unknown name, AAAA", frontGW, "nope.", mdns.TypeAAAA, mdns.RcodeNameError, nil},
		{"unknown name in another segment", frontGW, "nope.back.", mdns.TypeA, mdns.RcodeNameError, nil},
		{"segment without names", frontGW, "x.empty.", mdns.TypeA, mdns.RcodeNameError, nil},
		{"a segment itself", frontGW, "back.", mdns.TypeA, mdns.RcodeSuccess, nil},
		{"the asking segment itself", frontGW, "front.", mdns.TypeA, mdns.RcodeSuccess, nil},
		{"unknown segment, no egress", frontGW, "web.nosuch.", mdns.TypeA, mdns.RcodeRefused, nil},
		{"outside name, no egress", frontGW, "example.com.", mdns.TypeA, mdns.RcodeRefused, nil},
		{"three labels, no egress", frontGW, "a.web.front.", mdns.TypeA, mdns.RcodeRefused, nil},
		{"root, no egress", backGW, ".", mdns.TypeNS, mdns.RcodeRefused, nil},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				resp := n.query(network, tt.server, tt.qname, tt.qtype)
				if resp.Rcode != tt.rcode {
					t.Fatalf("%s %s: rcode %s, want %s", tt.qname, mdns.TypeToString[tt.qtype],
						mdns.RcodeToString[resp.Rcode], mdns.RcodeToString[tt.rcode])
				}
				if got := answers(resp); !slices.Equal(got, tt.want) {
					t.Errorf("%s: answers %v, want %v", tt.qname, got, tt.want)
				}
				strata := tt.rcode != mdns.RcodeRefused
				if resp.Authoritative != strata {
					t.Errorf("%s: authoritative %v, want %v", tt.qname, resp.Authoritative, strata)
				}
				for _, rr := range resp.Answer {
					if rr.Header().Name != tt.qname {
						t.Errorf("answer for %s named %s: want the name as asked", tt.qname, rr.Header().Name)
					}
					if rr.Header().Ttl != 5 {
						t.Errorf("%s: TTL %d, want 5", tt.qname, rr.Header().Ttl)
					}
				}
			})
		}
	}
}

// TestAnswersRotate checks that each address comes first in turn.
func TestAnswersRotate(t *testing.T) {
	n, _ := twoSegments(t, nil)
	first := map[string]int{}
	for range 10 {
		resp := n.query("udp", frontGW, "web.", mdns.TypeA)
		first[resp.Answer[0].(*mdns.A).A.String()]++
	}
	if len(first) != 2 {
		t.Errorf("first addresses over 10 queries: %v, want both instances", first)
	}
}

// TestListensOnGatewayOnly: the bridge holds a second address, where
// nothing may answer (the server binds the gateway, not 0.0.0.0).
func TestListensOnGatewayOnly(t *testing.T) {
	n, _ := twoSegments(t, nil)
	for _, network := range []string{"udp", "tcp"} {
		m := new(mdns.Msg)
		m.SetQuestion("web.", mdns.TypeA)
		if resp, err := n.exchange(network, "10.213.1.2", m); err == nil {
			t.Errorf("%s query to 10.213.1.2 answered (%s): want no server there", network, mdns.RcodeToString[resp.Rcode])
		}
	}
}

func TestForward(t *testing.T) {
	n, s := twoSegments(t, func(o *Options) {
		o.Upstreams = []netip.AddrPort{netip.MustParseAddrPort("10.213.3.53:53")}
	})
	n.addBridge("10.213.3.53/24")
	n.fakeUpstream("10.213.3.53", netip.MustParseAddr("10.213.3.99"))
	r := testRecords()
	r.Egress["front"] = true
	s.Set(r)

	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			resp := n.query(network, frontGW, "example.com.", mdns.TypeA)
			if resp.Rcode != mdns.RcodeSuccess || !slices.Equal(answers(resp), []string{"10.213.3.99"}) {
				t.Errorf("example.com from front: %s %v, want the upstream's 10.213.3.99", mdns.RcodeToString[resp.Rcode], answers(resp))
			}
			if resp.Authoritative {
				t.Error("forwarded answer marked authoritative")
			}
			// Two labels, the second not a segment: forwarded too.
			resp = n.query(network, frontGW, "web.nosuch.", mdns.TypeA)
			if !slices.Equal(answers(resp), []string{"10.213.3.99"}) {
				t.Errorf("web.nosuch from front: %v, want it forwarded", answers(resp))
			}
			// The upstream's NXDOMAIN is passed back.
			if resp = n.query(network, frontGW, "nx.example.com.", mdns.TypeA); resp.Rcode != mdns.RcodeNameError {
				t.Errorf("nx.example.com from front: %s, want the upstream's NXDOMAIN", mdns.RcodeToString[resp.Rcode])
			}
			// Strata names are still answered here, not upstream.
			if resp = n.query(network, frontGW, "nope.", mdns.TypeA); resp.Rcode != mdns.RcodeNameError || !resp.Authoritative {
				t.Errorf("nope from front: %s, want an authoritative NXDOMAIN", mdns.RcodeToString[resp.Rcode])
			}
			if resp = n.query(network, frontGW, "db.back.", mdns.TypeA); !resp.RecursionAvailable {
				t.Error("front may forward, but its answers say recursion is not available")
			}
			// back may not reach outside.
			if resp = n.query(network, backGW, "example.com.", mdns.TypeA); resp.Rcode != mdns.RcodeRefused {
				t.Errorf("example.com from back: %s, want REFUSED", mdns.RcodeToString[resp.Rcode])
			}
		})
	}
}

// TestForwardNextUpstream: an upstream that does not answer is skipped
// after the timeout.
func TestForwardNextUpstream(t *testing.T) {
	n, s := twoSegments(t, func(o *Options) {
		o.ForwardTimeout = 300 * time.Millisecond
		o.Upstreams = []netip.AddrPort{
			netip.MustParseAddrPort("10.213.3.54:53"), // silent
			netip.MustParseAddrPort("10.213.3.53:53"),
		}
	})
	n.addBridge("10.213.3.53/24", "10.213.3.54/24")
	n.fakeUpstream("10.213.3.53", netip.MustParseAddr("10.213.3.99"))
	n.silentUpstream("10.213.3.54")
	s.Set(Records{Egress: map[string]bool{"front": true}})
	for _, network := range []string{"udp", "tcp"} {
		resp := n.query(network, frontGW, "example.com.", mdns.TypeA)
		if !slices.Equal(answers(resp), []string{"10.213.3.99"}) {
			t.Errorf("%s: %s %v, want the second upstream's answer", network, mdns.RcodeToString[resp.Rcode], answers(resp))
		}
	}
}

func TestForwardNoAnswer(t *testing.T) {
	n, s := twoSegments(t, func(o *Options) {
		o.ForwardTimeout = 300 * time.Millisecond
		o.Upstreams = []netip.AddrPort{netip.MustParseAddrPort("10.213.3.54:53")}
	})
	n.addBridge("10.213.3.54/24")
	n.silentUpstream("10.213.3.54")
	s.Set(Records{Egress: map[string]bool{"front": true}})
	for _, network := range []string{"udp", "tcp"} {
		start := time.Now()
		resp := n.query(network, frontGW, "example.com.", mdns.TypeA)
		if resp.Rcode != mdns.RcodeServerFailure {
			t.Errorf("%s: %s, want SERVFAIL when the upstream is silent", network, mdns.RcodeToString[resp.Rcode])
		}
		t.Logf("%s: SERVFAIL after %v", network, time.Since(start).Round(time.Millisecond))
	}
}

// TestForwardNoUpstreams: an empty upstream list answers SERVFAIL at once.
func TestForwardNoUpstreams(t *testing.T) {
	n, s := twoSegments(t, nil)
	s.Set(Records{Egress: map[string]bool{"front": true}})
	if resp := n.query("udp", frontGW, "example.com.", mdns.TypeA); resp.Rcode != mdns.RcodeServerFailure {
		t.Errorf("%s, want SERVFAIL without upstreams", mdns.RcodeToString[resp.Rcode])
	}
}

// TestForwardFromResolvConf: without Options.Upstreams the server reads the
// resolv.conf file, and reads it again when it changes.
func TestForwardFromResolvConf(t *testing.T) {
	conf := t.TempDir() + "/resolv.conf"
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("nameserver 10.213.3.53\n")
	n, s := twoSegments(t, func(o *Options) {
		o.Upstreams = nil
		o.ResolvConf = conf
	})
	n.addBridge("10.213.3.53/24", "10.213.3.55/24")
	n.fakeUpstream("10.213.3.53", netip.MustParseAddr("10.213.3.99"))
	n.fakeUpstream("10.213.3.55", netip.MustParseAddr("10.213.3.98"))
	s.Set(Records{Egress: map[string]bool{"front": true}})
	if got := answers(n.query("udp", frontGW, "example.com.", mdns.TypeA)); !slices.Equal(got, []string{"10.213.3.99"}) {
		t.Errorf("answers %v, want 10.213.3.99 from the first resolv.conf", got)
	}
	write("# changed\nnameserver 10.213.3.55\n")
	if got := answers(n.query("udp", frontGW, "example.com.", mdns.TypeA)); !slices.Equal(got, []string{"10.213.3.98"}) {
		t.Errorf("answers %v, want 10.213.3.98 from the changed resolv.conf", got)
	}
}

// TestTruncation: a name with more addresses than 512 bytes hold is
// truncated over UDP without EDNS, complete with EDNS or over TCP.
func TestTruncation(t *testing.T) {
	n, s := twoSegments(t, nil)
	var many []netip.Addr
	for i := range 200 {
		many = append(many, netip.AddrFrom4([4]byte{10, 213, 1, byte(10 + i)}))
	}
	s.Set(Records{Names: map[string]map[string][]netip.Addr{"front": {"big": many}}})

	resp := n.query("udp", frontGW, "big.", mdns.TypeA)
	if !resp.Truncated || len(resp.Answer) == 0 || len(resp.Answer) >= 200 {
		t.Errorf("UDP without EDNS: truncated %v with %d answers, want truncated with some", resp.Truncated, len(resp.Answer))
	}
	resp = n.query("tcp", frontGW, "big.", mdns.TypeA)
	if resp.Truncated || len(resp.Answer) != 200 {
		t.Errorf("TCP: truncated %v with %d answers, want all 200", resp.Truncated, len(resp.Answer))
	}
	m := new(mdns.Msg)
	m.SetQuestion("big.", mdns.TypeA)
	m.SetEdns0(4096, false)
	resp, err := n.exchange("udp", frontGW, m)
	if err != nil {
		t.Fatal(err)
	}
	// 200 compressed A records take about 3.2 kB, more than the 1232
	// bytes the server sends over UDP... unless the client asks for more.
	if resp.IsEdns0() == nil {
		t.Error("EDNS query answered without an OPT record")
	}
	if resp.Truncated || len(resp.Answer) != 200 {
		t.Errorf("UDP with EDNS 4096: truncated %v with %d answers, want all 200", resp.Truncated, len(resp.Answer))
	}
}

// TestSetWhileQuerying: queries running while the table changes see one
// table or the other, never a mix.
func TestSetWhileQuerying(t *testing.T) {
	n, s := twoSegments(t, nil)
	tables := []Records{
		{Names: map[string]map[string][]netip.Addr{"front": {"web": ips("10.213.1.10", "10.213.1.11"), "api": ips("10.213.1.20")}}},
		{Names: map[string]map[string][]netip.Addr{"front": {"web": ips("10.213.1.30", "10.213.1.31", "10.213.1.32"), "api": ips("10.213.1.40")}}},
	}
	valid := map[string]bool{
		"10.213.1.10 10.213.1.11":             true,
		"10.213.1.30 10.213.1.31 10.213.1.32": true,
	}
	stop := make(chan struct{})
	var sets atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r := tables[i%2]
			s.Set(r)
			// Changing the caller's maps afterwards must not reach the server.
			r.Names["front"]["junk"] = ips("10.213.1.99")
			delete(r.Names["front"], "junk")
			sets.Add(1)
		}
	})
	var queries atomic.Int64
	for range 4 {
		wg.Go(func() {
			for i := range 200 {
				network := "udp"
				if i%10 == 0 {
					network = "tcp"
				}
				m := new(mdns.Msg)
				m.SetQuestion("web.", mdns.TypeA)
				resp, err := n.exchange(network, frontGW, m)
				if err != nil {
					t.Error(err)
					return
				}
				if got := strings.Join(answers(resp), " "); !valid[got] {
					t.Errorf("answers %q belong to neither table", got)
				}
				queries.Add(1)
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	for queries.Load() < 800 && !t.Failed() {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d queries while the table was replaced %d times", queries.Load(), sets.Load())
}

func TestServeTwiceStopServe(t *testing.T) {
	n, s := twoSegments(t, nil)
	n.serve(s, "front", frontGW) // again: nothing changes
	if got := answers(n.query("udp", frontGW, "web-0.", mdns.TypeA)); !slices.Equal(got, []string{"10.213.1.10"}) {
		t.Fatalf("after the second Serve: %v", got)
	}
	if err := s.Stop("front"); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop("front"); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	m := new(mdns.Msg)
	m.SetQuestion("web.", mdns.TypeA)
	for _, network := range []string{"udp", "tcp"} {
		if _, err := n.exchange(network, frontGW, m); err == nil {
			t.Errorf("%s: answered after Stop", network)
		}
	}
	if resp := n.query("udp", backGW, "db.", mdns.TypeA); resp.Rcode != mdns.RcodeSuccess {
		t.Errorf("back after front stopped: %s", mdns.RcodeToString[resp.Rcode])
	}
	n.serve(s, "front", frontGW)
	for _, network := range []string{"udp", "tcp"} {
		if got := answers(n.query(network, frontGW, "web-0.", mdns.TypeA)); !slices.Equal(got, []string{"10.213.1.10"}) {
			t.Errorf("%s after Serve again: %v", network, got)
		}
	}
	want := map[string]netip.AddrPort{
		"front": netip.MustParseAddrPort(frontGW + ":53"),
		"back":  netip.MustParseAddrPort(backGW + ":53"),
	}
	if got := s.Serving(); len(got) != 2 || got["front"] != want["front"] || got["back"] != want["back"] {
		t.Errorf("Serving() = %v, want %v", got, want)
	}
}

// TestServeMoves: serving a segment on another gateway moves it there.
func TestServeMoves(t *testing.T) {
	n, s := twoSegments(t, nil)
	n.addBridge("10.213.5.1/24")
	n.serve(s, "front", "10.213.5.1")
	if resp := n.query("udp", "10.213.5.1", "web-0.", mdns.TypeA); !slices.Equal(answers(resp), []string{"10.213.1.10"}) {
		t.Errorf("front on its new gateway: %v", answers(resp))
	}
	m := new(mdns.Msg)
	m.SetQuestion("web.", mdns.TypeA)
	if _, err := n.exchange("udp", frontGW, m); err == nil {
		t.Error("front's old gateway still answers")
	}
}

func TestServeErrors(t *testing.T) {
	n := newTestNet(t)
	n.addBridge(frontGW + "/24")
	s := n.server(nil)

	err := s.Serve("front", netip.MustParseAddr("10.213.7.1"))
	if err == nil {
		t.Fatal("Serve on an address that no interface has succeeded")
	}
	for _, want := range []string{"front", "10.213.7.1:53", "no interface"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if got := s.Serving(); len(got) != 0 {
		t.Errorf("Serving() = %v after a failed Serve", got)
	}

	n.serve(s, "front", frontGW)
	err = s.Serve("other", netip.MustParseAddr(frontGW))
	if err == nil || !strings.Contains(err.Error(), "already listens") {
		t.Errorf("second segment on the same gateway: %v, want an address-in-use error", err)
	}

	if err := s.Serve("", netip.MustParseAddr(frontGW)); !errors.Is(err, netseg.ErrInvalid) {
		t.Errorf("Serve without a segment name: %v, want ErrInvalid", err)
	}
	if err := s.Serve("x", netip.Addr{}); !errors.Is(err, netseg.ErrInvalid) {
		t.Errorf("Serve without an address: %v, want ErrInvalid", err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve("front", netip.MustParseAddr(frontGW)); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve after Close: %v, want ErrClosed", err)
	}
}

// TestNotImplemented: opcodes other than QUERY get NOTIMP.
func TestNotImplemented(t *testing.T) {
	n, _ := twoSegments(t, nil)
	m := new(mdns.Msg)
	m.SetNotify("web.")
	resp, err := n.exchange("udp", frontGW, m)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Rcode != mdns.RcodeNotImplemented {
		t.Errorf("NOTIFY: %s, want NOTIMP", mdns.RcodeToString[resp.Rcode])
	}
}
