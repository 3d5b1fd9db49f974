package policy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"strata.dev/strata/internal/netseg/nstest"
	"strata.dev/strata/internal/testenv"
)

// lab is a namespace playing the host, with strata's bridges in it, each
// instance in a namespace of its own behind a veth pair whose host end is a
// port of its segment's bridge, and an "outside" namespace behind a veth
// that is not strata's (up0), routed to the segments so that only the
// policy stops it. Everything is in namespaces the test made and that
// vanish with it.
type lab struct {
	t    *testing.T
	host netns.NsHandle
	nl   *netlink.Handle
	n    int // veth pairs made
}

func newLab(t *testing.T) *lab {
	l := &lab{t: t, host: newNetNS(t)}
	nl, err := netlink.NewHandleAt(l.host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nl.Close)
	l.nl = nl
	l.up(nl, "lo")
	l.sysctl("net/ipv4/ip_forward", "1")
	return l
}

func (l *lab) up(h *netlink.Handle, name string) {
	l.t.Helper()
	link, err := h.LinkByName(name)
	if err == nil {
		err = h.LinkSetUp(link)
	}
	if err != nil {
		l.t.Fatalf("set %s up: %v", name, err)
	}
}

// sysctl writes a value under /proc/sys in the host namespace.
func (l *lab) sysctl(key, value string) {
	l.t.Helper()
	err := inNS(l.host, func() error {
		return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644)
	})
	if err != nil {
		l.t.Fatalf("sysctl %s=%s: %v", key, value, err)
	}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
}

// bridge makes a segment's bridge holding its gateway address.
func (l *lab) bridge(name string, gw netip.Prefix) {
	l.t.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := l.nl.LinkAdd(br); err != nil {
		testenv.Skipf(l.t, "kernel cannot create bridges here: %v", err)
	}
	if err := l.nl.AddrAdd(br, &netlink.Addr{IPNet: ipNet(gw)}); err != nil {
		l.t.Fatal(err)
	}
	l.up(l.nl, name)
}

// peer makes a namespace whose eth0 has addr and a route to dst via gw,
// the other end of a veth pair whose host end is hostEnd, a port of
// bridge master unless master is "".
func (l *lab) peer(hostEnd, master string, addr netip.Prefix, dst netip.Prefix, gw netip.Addr) netns.NsHandle {
	l.t.Helper()
	child := newNetNS(l.t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostEnd}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(child))}
	if err := l.nl.LinkAdd(veth); err != nil {
		testenv.Skipf(l.t, "kernel cannot create veth pairs here: %v", err)
	}
	if master != "" {
		br, err := l.nl.LinkByName(master)
		if err == nil {
			err = l.nl.LinkSetMaster(veth, br)
		}
		if err != nil {
			l.t.Fatal(err)
		}
	}
	l.up(l.nl, hostEnd)
	ch, err := netlink.NewHandleAt(child)
	if err != nil {
		l.t.Fatal(err)
	}
	defer ch.Close()
	eth0, err := ch.LinkByName("eth0")
	if err != nil {
		l.t.Fatal(err)
	}
	if err := ch.AddrAdd(eth0, &netlink.Addr{IPNet: ipNet(addr)}); err != nil {
		l.t.Fatal(err)
	}
	l.up(ch, "eth0")
	l.up(ch, "lo")
	if err := ch.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: ipNet(dst), Gw: gw.AsSlice()}); err != nil {
		l.t.Fatal(err)
	}
	l.waitUp(ch, "eth0")
	l.waitUp(l.nl, hostEnd)
	return child
}

// instance makes an instance on a segment: the host end of its veth is
// named as strata names them ("st-" and hex digits), and is in hairpin
// mode, so that the bridge may send a frame back out of the port it came
// in by (see "br_netfilter" in the package documentation).
func (l *lab) instance(bridge string, addr netip.Prefix, gw netip.Addr) netns.NsHandle {
	l.t.Helper()
	l.n++
	name := fmt.Sprintf("st-%012x", 0xabc000+l.n)
	ns := l.peer(name, bridge, addr, netip.MustParsePrefix("0.0.0.0/0"), gw)
	port, err := l.nl.LinkByName(name)
	if err == nil {
		err = l.nl.LinkSetHairpin(port, true)
	}
	if err != nil {
		l.t.Fatalf("hairpin mode on %s: %v", name, err)
	}
	return ns
}

// waitUp waits until link name is operationally up: before that the
// kernel drops what is sent through it.
func (l *lab) waitUp(h *netlink.Handle, name string) {
	l.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		link, err := h.LinkByName(name)
		if err != nil {
			l.t.Fatal(err)
		}
		if link.Attrs().OperState == netlink.OperUp {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s is not up after 5s (%s)", name, link.Attrs().OperState)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serve listens on addr inside ns and answers each connection with the
// server's address and the client's as it saw them.
func serve(t *testing.T, ns netns.NsHandle, addr netip.AddrPort) {
	t.Helper()
	nstest.ServeTCP(t, func(f func() error) error { return inNS(ns, f) }, addr, func(c net.Conn) string {
		return c.LocalAddr().(*net.TCPAddr).IP.String() + " " + nstest.RemoteIP(c)
	})
}

// answer is what a server said: who served, and whom it saw.
type answer struct{ server, client netip.Addr }

// dial connects from ns to addr and reads the server's answer.
func dial(ns netns.NsHandle, addr netip.AddrPort, timeout time.Duration) (answer, error) {
	var c net.Conn
	err := inNS(ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr.String(), timeout)
		return err
	})
	if err != nil {
		return answer{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return answer{}, fmt.Errorf("read answer: %w", err)
	}
	var a answer
	server, client, _ := strings.Cut(strings.TrimSpace(line), " ")
	if a.server, err = netip.ParseAddr(server); err == nil {
		a.client, err = netip.ParseAddr(client)
	}
	return a, err
}

// flow is one connection a test expects to pass or to be dropped.
type flow struct {
	name   string
	from   netns.NsHandle
	to     netip.AddrPort
	pass   bool
	server []netip.Addr // when passing: one of these serves it (any if empty)
	client netip.Addr   // when passing: the server sees this client (any if invalid)
}

// Timeouts: a dropped SYN shows as a connect timeout; an admitted one
// connects in well under a millisecond here, or after one retransmission.
const (
	droppedAfter = 700 * time.Millisecond
	passWithin   = 3 * time.Second
)

// check tries every flow at once and reports each that did not do as
// expected. A dropped flow must time out: a refusal means something else
// answered.
func check(t *testing.T, mode string, flows []flow) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(flows))
	for i, f := range flows {
		wg.Go(func() {
			timeout := passWithin
			if !f.pass {
				timeout = droppedAfter
			}
			a, err := dial(f.from, f.to, timeout)
			var ne net.Error
			switch {
			case f.pass && err != nil:
				errs[i] = fmt.Errorf("should pass: %w", err)
			case f.pass && len(f.server) > 0 && !containsAddr(f.server, a.server):
				errs[i] = fmt.Errorf("served by %s, want one of %v", a.server, f.server)
			case f.pass && f.client.IsValid() && a.client != f.client:
				errs[i] = fmt.Errorf("server saw client %s, want %s", a.client, f.client)
			case !f.pass && err == nil:
				errs[i] = fmt.Errorf("should be dropped, but %s answered (seeing %s)", a.server, a.client)
			case !f.pass && (!errors.As(err, &ne) || !ne.Timeout()):
				errs[i] = fmt.Errorf("should be dropped (a timeout), got %w", err)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %s (to %s): %v", mode, flows[i].name, flows[i].to, err)
		}
	}
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// TestTraffic builds three segments and an outside network in namespaces,
// applies a policy and sends real TCP connections: admitted ones connect,
// dropped ones time out. It runs with the kernel's bridge netfilter
// calls on (bridged packets cross the inet forward hook) and off.
func TestTraffic(t *testing.T) {
	l := newLab(t)
	ap, addr, pfx := netip.MustParseAddrPort, netip.MustParseAddr, netip.MustParsePrefix

	l.bridge("st-a", pfx("10.213.1.1/24"))
	l.bridge("st-b", pfx("10.213.2.1/24"))
	l.bridge("st-c", pfx("10.213.3.1/24"))
	a1 := l.instance("st-a", pfx("10.213.1.2/24"), addr("10.213.1.1"))
	a2 := l.instance("st-a", pfx("10.213.1.3/24"), addr("10.213.1.1"))
	b1 := l.instance("st-b", pfx("10.213.2.2/24"), addr("10.213.2.1"))
	c1 := l.instance("st-c", pfx("10.213.3.2/24"), addr("10.213.3.1"))
	out := l.peer("up0", "", pfx("10.213.250.2/24"), pfx("10.213.0.0/16"), addr("10.213.250.1"))
	up0, err := l.nl.LinkByName("up0")
	if err == nil {
		err = l.nl.AddrAdd(up0, &netlink.Addr{IPNet: ipNet(pfx("10.213.250.1/24"))})
	}
	if err != nil {
		t.Fatal(err)
	}

	for ns, a := range map[netns.NsHandle]string{a1: "10.213.1.2", a2: "10.213.1.3", b1: "10.213.2.2", c1: "10.213.3.2"} {
		serve(t, ns, ap(a+":7007"))
		serve(t, ns, ap(a+":7008"))
	}
	serve(t, out, ap("10.213.250.2:7007"))
	for _, a := range []string{"10.213.1.1:53", "10.213.1.1:22", "10.213.2.1:53"} {
		serve(t, l.host, ap(a)) // the DNS server on a gateway, and a host service
	}

	// Without the table, everything connects: what the policy drops later
	// is dropped by the policy.
	check(t, "no policy", []flow{
		{name: "c1 to a1", from: c1, to: ap("10.213.1.2:7007"), pass: true},
		{name: "b1 to outside", from: b1, to: ap("10.213.250.2:7007"), pass: true},
		{name: "outside to b1", from: out, to: ap("10.213.2.2:7007"), pass: true},
		{name: "a1 to a host service", from: a1, to: ap("10.213.1.1:22"), pass: true},
	})
	if t.Failed() {
		t.FailNow()
	}

	p := Policy{
		Segments: []Segment{
			{Name: "a", Bridge: "st-a", Subnet: pfx("10.213.1.0/24"), Gateway: addr("10.213.1.1"), Egress: true,
				Allow: []Allow{{From: "b", Ports: []Port{{7007, "tcp"}}}}},
			{Name: "b", Bridge: "st-b", Subnet: pfx("10.213.2.0/24"), Gateway: addr("10.213.2.1"),
				Allow: []Allow{{From: "c"}}},
			{Name: "c", Bridge: "st-c", Subnet: pfx("10.213.3.0/24"), Gateway: addr("10.213.3.1")},
		},
		Publish: []Publish{{HostPort: 8080, Protocol: "tcp", Segment: "a", Targets: []netip.AddrPort{ap("10.213.1.2:7007"), ap("10.213.1.3:7007")}}},
	}
	c := conn(t, l.host)
	mustApply(t, c, p)
	t.Cleanup(func() {
		if err := Remove(c); err != nil {
			t.Error(err)
		}
	})

	targets := []netip.Addr{addr("10.213.1.2"), addr("10.213.1.3")}
	flows := []flow{
		{name: "a1 to a2, same segment", from: a1, to: ap("10.213.1.3:7007"), pass: true, client: addr("10.213.1.2")},
		{name: "b1 to a1, allowed port", from: b1, to: ap("10.213.1.2:7007"), pass: true, client: addr("10.213.2.2")},
		{name: "b1 to a1, other port", from: b1, to: ap("10.213.1.2:7008"), pass: false},
		{name: "c1 to a1, no allow", from: c1, to: ap("10.213.1.2:7007"), pass: false},
		{name: "a1 to b1, allowed only the other way", from: a1, to: ap("10.213.2.2:7007"), pass: false},
		{name: "c1 to b1, every port", from: c1, to: ap("10.213.2.2:7008"), pass: true, client: addr("10.213.3.2")},
		{name: "a1 to outside, egress, masqueraded", from: a1, to: ap("10.213.250.2:7007"), pass: true, client: addr("10.213.250.1")},
		{name: "b1 to outside, no egress", from: b1, to: ap("10.213.250.2:7007"), pass: false},
		{name: "outside to b1", from: out, to: ap("10.213.2.2:7007"), pass: false},
		{name: "a1 to its gateway's DNS port", from: a1, to: ap("10.213.1.1:53"), pass: true},
		{name: "a1 to a host service", from: a1, to: ap("10.213.1.1:22"), pass: false},
		{name: "a1 to another segment's gateway", from: a1, to: ap("10.213.2.1:53"), pass: false},
		{name: "outside to the published port", from: out, to: ap("10.213.250.1:8080"), pass: true, server: targets, client: addr("10.213.250.2")},
		{name: "host to its own published port", from: l.host, to: ap("10.213.250.1:8080"), pass: true, server: targets},
		{name: "a2 to the published port on its gateway", from: a2, to: ap("10.213.1.1:8080"), pass: true, server: targets, client: addr("10.213.1.1")},
	}
	modes := []string{"0", "1"}
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
		t.Logf("br_netfilter is not loaded on this machine: testing bridged traffic without it only")
		modes = nil
	}
	for _, mode := range modes {
		l.sysctl("net/bridge/bridge-nf-call-iptables", mode)
		name := "bridge-nf-call-iptables=" + mode
		check(t, name, flows)
		// Successive connections reach both targets; from a target
		// itself too, one of them coming back to it.
		roundRobin(t, name, out, ap("10.213.250.1:8080"), targets, addr("10.213.250.2"))
		roundRobin(t, name, a1, ap("10.213.1.1:8080"), targets, addr("10.213.1.1"))
	}
	if modes == nil {
		check(t, "no br_netfilter", flows)
		roundRobin(t, "no br_netfilter", out, ap("10.213.250.1:8080"), targets, addr("10.213.250.2"))
		roundRobin(t, "no br_netfilter", a1, ap("10.213.1.1:8080"), targets, addr("10.213.1.1"))
	}
}

// roundRobin checks that successive connections from ns to a published
// port are served by each target in turn, each seeing client.
func roundRobin(t *testing.T, mode string, from netns.NsHandle, to netip.AddrPort, targets []netip.Addr, client netip.Addr) {
	t.Helper()
	served := make(map[netip.Addr]bool)
	for range targets {
		a, err := dial(from, to, passWithin)
		if err != nil {
			t.Errorf("%s: published port %s: %v", mode, to, err)
			return
		}
		if a.client != client {
			t.Errorf("%s: published port %s: server %s saw client %s, want %s", mode, to, a.server, a.client, client)
		}
		served[a.server] = true
	}
	for _, tg := range targets {
		if !served[tg] {
			t.Errorf("%s: %d connections to %s were served by %v, want each of %v", mode, len(targets), to, served, targets)
		}
	}
}
