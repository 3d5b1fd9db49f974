package dns

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"strata.dev/strata/internal/netseg"
	"strata.dev/strata/internal/netseg/nstest"
	"strata.dev/strata/internal/testenv"
)

// testNet is a network namespace of the test's own that plays the host:
// the test's bridges and addresses are made there, never in the machine's
// namespace, and everything goes when the test ends.
type testNet struct {
	t      testing.TB
	name   string // under /run/netns
	ns     netns.NsHandle
	host   netseg.Host
	bridge int // bridges made so far
}

// newTestNet creates the namespace with lo up, or skips the test when the
// machine cannot.
func newTestNet(t testing.TB) *testNet {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "needs root: the test creates a network namespace and bridges")
	}
	n := &testNet{t: t, name: fmt.Sprintf("strata-dnstest-%x", rand.Uint64())}
	ns, err := nstest.NewNamed(n.name)
	if err != nil {
		testenv.Skipf(t, "kernel cannot create a network namespace here: %v", err)
	}
	n.ns = ns
	n.host = netseg.NamespaceHost(ns)
	t.Cleanup(n.close)
	h := n.netlink()
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatalf("set lo up in the test namespace: %v", err)
	}
	return n
}

func (n *testNet) netlink() *netlink.Handle {
	n.t.Helper()
	h, err := n.host.Netlink()
	if err != nil {
		n.t.Fatal(err)
	}
	return h
}

// addBridge makes a bridge that holds the given addresses (the first is
// the gateway, a.b.c.1/24 style), as a segment's bridge would. The test's
// end deletes it.
func (n *testNet) addBridge(addrs ...string) {
	n.t.Helper()
	h := n.netlink()
	defer h.Close()
	n.bridge++
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("st-dnstest%d", n.bridge)}}
	if err := h.LinkAdd(br); err != nil {
		testenv.Skipf(n.t, "kernel cannot create bridges: %v", err)
	}
	for _, a := range addrs {
		ip, err := netlink.ParseAddr(a)
		if err != nil {
			n.t.Fatal(err)
		}
		if err := h.AddrAdd(br, ip); err != nil {
			n.t.Fatalf("add %s to %s: %v", a, br.Name, err)
		}
	}
	if err := h.LinkSetUp(br); err != nil {
		n.t.Fatal(err)
	}
}

// close deletes the bridges and the namespace, and checks that nothing
// else was left in it.
func (n *testNet) close() {
	t := n.t
	if h, err := n.host.Netlink(); err != nil {
		t.Errorf("netlink in test namespace: %v", err)
	} else {
		links, err := h.LinkList()
		if err != nil {
			t.Errorf("list links in test namespace: %v", err)
		}
		for _, l := range links {
			name := l.Attrs().Name
			switch {
			case name == "lo":
			case strings.HasPrefix(name, "st-dnstest"):
				if err := h.LinkDel(l); err != nil {
					t.Errorf("delete %s: %v", name, err)
				}
			default:
				t.Errorf("test namespace %s holds an unexpected link %s", n.name, name)
			}
		}
		h.Close()
	}
	if err := n.ns.Close(); err != nil {
		t.Errorf("close test namespace: %v", err)
	}
	if err := netns.DeleteNamed(n.name); err != nil {
		t.Errorf("delete test namespace %s: %v", n.name, err)
	}
}

// server starts a Server in the namespace; the test's end closes it.
func (n *testNet) server(edit func(*Options)) *Server {
	o := Options{Host: n.host, Logger: testLogger(n.t), Upstreams: []netip.AddrPort{}}
	if edit != nil {
		edit(&o)
	}
	s := New(o)
	n.t.Cleanup(func() {
		if err := s.Close(); err != nil {
			n.t.Errorf("close server: %v", err)
		}
	})
	return s
}

// serve makes s serve segment on gateway, failing the test if it cannot.
func (n *testNet) serve(s *Server, segment, gateway string) {
	n.t.Helper()
	if err := s.Serve(segment, netip.MustParseAddr(gateway)); err != nil {
		n.t.Fatal(err)
	}
}

// dial opens a client connection to server:53 from inside the namespace.
func (n *testNet) dial(network, server string) (*mdns.Conn, error) {
	var c net.Conn
	err := n.host.Do(func() error {
		var err error
		c, err = net.DialTimeout(network, net.JoinHostPort(server, "53"), 2*time.Second)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &mdns.Conn{Conn: c}, nil
}

// exchange sends m to server:53 over network ("udp" or "tcp") from inside
// the namespace.
func (n *testNet) exchange(network, server string, m *mdns.Msg) (*mdns.Msg, error) {
	co, err := n.dial(network, server)
	if err != nil {
		return nil, err
	}
	defer co.Close()
	c := mdns.Client{Net: network, Timeout: 3 * time.Second}
	resp, _, err := c.ExchangeWithConn(m, co)
	return resp, err
}

// query asks server for name and type over network, failing the test
// when no answer comes.
func (n *testNet) query(network, server, name string, qtype uint16) *mdns.Msg {
	n.t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	resp, err := n.exchange(network, server, m)
	if err != nil {
		n.t.Fatalf("query %s %s to %s over %s: %v", name, mdns.TypeToString[qtype], server, network, err)
	}
	return resp
}

// fakeUpstream is a name server in the namespace that answers every A
// query with addr (NXDOMAIN for names starting with "nx."), over UDP and
// TCP, and counts what it answered.
func (n *testNet) fakeUpstream(listen string, addr netip.Addr) {
	n.t.Helper()
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		resp := new(mdns.Msg)
		resp.SetReply(r)
		resp.RecursionAvailable = true
		q := r.Question[0]
		switch {
		case strings.HasPrefix(q.Name, "nx."):
			resp.Rcode = mdns.RcodeNameError
		case q.Qtype == mdns.TypeA:
			resp.Answer = append(resp.Answer, &mdns.A{
				Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 300},
				A:   addr.AsSlice(),
			})
		}
		_ = w.WriteMsg(resp)
	})
	var (
		pc net.PacketConn
		ln net.Listener
	)
	err := n.host.Do(func() error {
		var err error
		if pc, err = net.ListenPacket("udp4", net.JoinHostPort(listen, "53")); err != nil {
			return err
		}
		ln, err = net.Listen("tcp4", net.JoinHostPort(listen, "53"))
		return err
	})
	if err != nil {
		n.t.Fatalf("fake upstream on %s: %v", listen, err)
	}
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		n.t.Cleanup(func() { _ = srv.Shutdown() })
	}
}

// silentUpstream holds UDP and TCP port 53 on listen and never answers.
func (n *testNet) silentUpstream(listen string) {
	n.t.Helper()
	err := n.host.Do(func() error {
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(listen, "53"))
		if err != nil {
			return err
		}
		n.t.Cleanup(func() { pc.Close() })
		ln, err := net.Listen("tcp4", net.JoinHostPort(listen, "53"))
		if err != nil {
			return err
		}
		n.t.Cleanup(func() { ln.Close() }) // connections wait in the backlog, unanswered
		return nil
	})
	if err != nil {
		n.t.Fatalf("silent upstream on %s: %v", listen, err)
	}
}

// testLogger writes the server's records to the test log with -v.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
