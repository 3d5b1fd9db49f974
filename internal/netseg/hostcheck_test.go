package netseg

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestHostSubnets gives the host namespace an uplink with an address and a route, and
// checks that a segment may not take either subnet, and that the pool skips them.
func TestHostSubnets(t *testing.T) {
	e := newTestEnv(t)
	h := e.netlink()
	defer h.Close()
	up := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "up1"}
	if err := h.LinkAdd(up); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.LinkDel(up) }()
	if err := h.LinkSetUp(up); err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(up, ipNet(netip.MustParseAddr("10.99.0.5"), netip.MustParsePrefix("10.99.0.0/24"))); err != nil {
		t.Fatal(err)
	}
	_, dst, _ := net.ParseCIDR("10.98.0.0/16")
	if err := h.RouteAdd(&netlink.Route{LinkIndex: up.Attrs().Index, Dst: dst}); err != nil {
		t.Fatal(err)
	}
	m := e.manager(func(o *Options) { o.Pool = netip.MustParsePrefix("10.99.0.0/22") })
	for _, tc := range []struct {
		subnet, want string
	}{
		{"10.99.0.0/24", "route 10.99.0.0/24 dev up0"},
		{"10.99.0.0/16", "10.99.0.0/24 dev up0"},
		{"10.98.4.0/24", "route 10.98.0.0/16 dev up0"},
	} {
		p := netip.MustParsePrefix(tc.subnet)
		if got, err := m.HostUse(p); err != nil || !strings.Contains(got, tc.want) {
			t.Errorf("HostUse(%s) = %q, %v, want %q", p, got, err, tc.want)
		}
		_, err := m.EnsureSegment(t.Context(), "taken", p)
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("EnsureSegment(%s) = %v, want a conflict naming %q", p, err, tc.want)
		}
	}
	if got, err := m.HostUse(netip.MustParsePrefix("10.97.0.0/24")); err != nil || got != "" {
		t.Errorf("HostUse of a subnet the host does not use: %q, %v", got, err)
	}
	// The pool's first /24 is the uplink's: the segment gets the next, and its own
	// bridge route does not count against it.
	s := ensure(t, m, "default", netip.Prefix{})
	if want := netip.MustParsePrefix("10.99.1.0/24"); s.Subnet != want {
		t.Errorf("segment from the pool got %s, want %s (past the uplink's 10.99.0.0/24)", s.Subnet, want)
	}
	if got, err := m.HostUse(s.Subnet); err != nil || got != "" {
		t.Errorf("HostUse of a segment's own subnet: %q, %v (its bridge is strata's)", got, err)
	}
	ensure(t, m, "default", netip.Prefix{}) // again: its own bridge is no conflict
}

// TestHostListener listens on TCP and UDP ports in the host namespace and checks that
// HostListener names them and the process, and finds nothing on other ports.
func TestHostListener(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager(nil)
	var tl net.Listener
	var ul net.PacketConn
	err := e.inHost(func() error {
		var err error
		if tl, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
		ul, err = net.ListenPacket("udp", "[::]:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	defer ul.Close()
	tport := uint16(tl.Addr().(*net.TCPAddr).Port)
	uport := uint16(ul.LocalAddr().(*net.UDPAddr).Port)
	self := fmt.Sprintf("(pid %d)", os.Getpid())
	for _, tc := range []struct {
		proto string
		port  uint16
		want  string
	}{
		{"tcp", tport, fmt.Sprintf("%s on 127.0.0.1:%d", self, tport)},
		{"udp", uport, fmt.Sprintf("%s on [::]:%d", self, uport)},
		{"udp", tport, ""},
		{"tcp", uport, ""},
	} {
		got, err := m.HostListener(tc.proto, tc.port)
		if err != nil {
			t.Fatal(err)
		}
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("HostListener(%s, %d) = %q, want %q", tc.proto, tc.port, got, tc.want)
		}
	}
	// A listener of the machine's own namespace is not the test namespace's.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, err := m.HostListener("tcp", uint16(l.Addr().(*net.TCPAddr).Port)); err != nil || got != "" {
		t.Errorf("HostListener found %q (%v) in another namespace", got, err)
	}
}
