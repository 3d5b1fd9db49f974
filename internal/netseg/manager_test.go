package netseg

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"strata.dev/strata/api/v1alpha1"
)

var (
	defaultSubnet = netip.MustParsePrefix("10.213.0.0/24")
	defaultGW     = netip.MustParseAddr("10.213.0.1")
)

// ensure is EnsureSegment that fails the test on error.
func ensure(t testing.TB, m *Manager, name string, subnet netip.Prefix) Segment {
	t.Helper()
	s, err := m.EnsureSegment(context.Background(), name, subnet)
	if err != nil {
		t.Fatalf("EnsureSegment(%s, %v): %v", name, subnet, err)
	}
	return s
}

// attach is Attach that fails the test on error.
func attach(t testing.TB, m *Manager, seg, id string) Attachment {
	t.Helper()
	a, err := m.Attach(context.Background(), seg, id)
	if err != nil {
		t.Fatalf("Attach(%s, %s): %v", seg, id, err)
	}
	return a
}

func TestAttachConnectsInstances(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager(nil)
	seg := ensure(t, m, v1alpha1.DefaultSegment, netip.Prefix{})
	want := Segment{Name: "default", Subnet: defaultSubnet, Gateway: defaultGW, Bridge: "st-default"}
	if seg != want {
		t.Fatalf("segment = %+v, want %+v", seg, want)
	}
	a := attach(t, m, "default", "web-0")
	b := attach(t, m, "default", "web-1")
	if a.IP == b.IP {
		t.Fatalf("both instances got %s", a.IP)
	}
	for _, x := range []Attachment{a, b} {
		if !defaultSubnet.Contains(x.IP) || x.IP == defaultGW {
			t.Errorf("%s got %s, not an instance address of %s", x.Instance, x.IP, defaultSubnet)
		}
		wantA := Attachment{
			Instance: x.Instance, Segment: "default", Kind: KindVeth, NetNS: filepath.Join(e.netnsDir, x.Instance),
			Interface: "eth0", IP: x.IP, Subnet: defaultSubnet, Gateway: defaultGW,
			MAC: macFor(x.IP), HostVeth: vethName("st-", x.Instance),
		}
		if fmt.Sprint(x) != fmt.Sprint(wantA) {
			t.Errorf("attachment = %+v\nwant %+v", x, wantA)
		}
		if !isNetNSMount(x.NetNS) {
			t.Errorf("%s is not a mounted namespace", x.NetNS)
		}
	}
	h := e.netlink()
	defer h.Close()
	br, err := h.LinkByName("st-default")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []Attachment{a, b} {
		l, err := h.LinkByName(x.HostVeth)
		if err != nil {
			t.Fatal(err)
		}
		if l.Attrs().MasterIndex != br.Attrs().Index {
			t.Errorf("%s is not a port of st-default", x.HostVeth)
		}
	}

	serveEcho(t, inInstance(a), a.IP)
	serveEcho(t, e.inHost, defaultGW)
	mustReach(t, "web-1", inInstance(b), a.IP, b.IP)
	mustReach(t, "web-0", inInstance(a), defaultGW, a.IP)
	mustReach(t, "the host", e.inHost, a.IP, defaultGW)
	// The instance's lo is up.
	serveEcho(t, inInstance(b), netip.MustParseAddr("127.0.0.1"))
	mustReach(t, "web-1", inInstance(b), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1"))
}

func TestRestartKeepsAddresses(t *testing.T) {
	e := newTestEnv(t)
	m1 := e.manager(nil)
	seg := ensure(t, m1, "default", netip.Prefix{})
	a := attach(t, m1, "default", "web-0")
	b := attach(t, m1, "default", "web-1")
	inode := netnsInode(t, a.NetNS)

	m2 := e.manager(nil) // the daemon restarted
	if got := m2.Segments(); !slices.Equal(got, []Segment{seg}) {
		t.Errorf("segments after restart = %+v, want %+v", got, seg)
	}
	if got, want := fmt.Sprint(m2.Attachments()), fmt.Sprint([]Attachment{a, b}); got != want {
		t.Errorf("attachments after restart = %s\nwant %s", got, want)
	}
	if got := ensure(t, m2, "default", netip.Prefix{}); got != seg {
		t.Errorf("EnsureSegment after restart = %+v, want %+v", got, seg)
	}
	a2 := attach(t, m2, "default", "web-0")
	if a2.IP != a.IP {
		t.Errorf("web-0 re-attached with %s, had %s", a2.IP, a.IP)
	}
	if netnsInode(t, a.NetNS) != inode {
		t.Error("re-attaching an intact instance rebuilt its namespace")
	}
	c := attach(t, m2, "default", "web-2")
	if c.IP == a.IP || c.IP == b.IP {
		t.Errorf("web-2 got %s, already held", c.IP)
	}
	if want := b.IP.Next(); c.IP != want {
		t.Errorf("web-2 got %s, want %s (allocation continues where the last manager stopped)", c.IP, want)
	}
	serveEcho(t, inInstance(a), a.IP)
	mustReach(t, "web-2", inInstance(c), a.IP, c.IP)
	if _, err := m1.Attachment("web-2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the old manager knows web-2: %v", err)
	}
}

func TestAttachRepairs(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, e *testEnv, a Attachment)
		newNS  bool // the repair needs a new namespace
	}{
		{"host veth deleted", func(t *testing.T, e *testEnv, a Attachment) {
			h := e.netlink()
			defer h.Close()
			if err := deleteLink(h, a.HostVeth, "veth"); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"address stripped", func(t *testing.T, e *testEnv, a Attachment) {
			// What runsc does to a namespace when a sandbox exits.
			inNS(t, a.NetNS, func(h *netlink.Handle) error {
				eth, err := h.LinkByName("eth0")
				if err != nil {
					return err
				}
				return h.AddrDel(eth, ipNet(a.IP, a.Subnet))
			})
		}, false},
		{"default route deleted", func(t *testing.T, e *testEnv, a Attachment) {
			inNS(t, a.NetNS, func(h *netlink.Handle) error {
				eth, err := h.LinkByName("eth0")
				if err != nil {
					return err
				}
				return h.RouteDel(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: a.Gateway.AsSlice()})
			})
		}, false},
		{"eth0 down", func(t *testing.T, e *testEnv, a Attachment) {
			inNS(t, a.NetNS, func(h *netlink.Handle) error {
				eth, err := h.LinkByName("eth0")
				if err != nil {
					return err
				}
				return h.LinkSetDown(eth)
			})
		}, false},
		{"namespace unmounted", func(t *testing.T, e *testEnv, a Attachment) {
			if err := removeNetNS(a.NetNS); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"bridge deleted", func(t *testing.T, e *testEnv, a Attachment) {
			h := e.netlink()
			defer h.Close()
			if err := deleteLink(h, "st-default", "bridge"); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			m := e.manager(nil)
			ensure(t, m, "default", netip.Prefix{})
			a := attach(t, m, "default", "web-0")
			b := attach(t, m, "default", "web-1")
			var inode uint64
			if !tt.newNS {
				inode = netnsInode(t, a.NetNS)
			}
			tt.damage(t, e, a)
			h := e.netlink()
			defer h.Close()
			if err := m.verify(h, m.segments["default"], m.attachments["web-0"]); err == nil {
				t.Fatal("verify finds nothing wrong after the damage")
			}
			a2 := attach(t, m, "default", "web-0")
			if fmt.Sprint(a2) != fmt.Sprint(a) {
				t.Errorf("repaired attachment = %+v, want %+v", a2, a)
			}
			if err := m.verify(h, m.segments["default"], m.attachments["web-0"]); err != nil {
				t.Errorf("still broken after Attach: %v", err)
			}
			if !tt.newNS && netnsInode(t, a.NetNS) != inode {
				t.Error("the repair replaced the namespace (and would cut off the processes in it)")
			}
			// web-1 is repaired on its next Attach too (its port left
			// with a deleted bridge).
			attach(t, m, "default", "web-1")
			serveEcho(t, inInstance(a2), a2.IP)
			mustReach(t, "web-1", inInstance(b), a2.IP, b.IP)
		})
	}
}

// inNS runs f with a netlink handle inside the namespace at path.
func inNS(t *testing.T, path string, f func(h *netlink.Handle) error) {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := f(h); err != nil {
		t.Fatal(err)
	}
}

func TestReattach(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	m := e.manager(nil)
	ensure(t, m, "default", netip.Prefix{})
	a := attach(t, m, "default", "sbx-0")
	b := attach(t, m, "default", "web-0")
	before := netnsInode(t, a.NetNS)
	a2, err := m.Reattach(ctx, "default", "sbx-0")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a2) != fmt.Sprint(a) {
		t.Errorf("Reattach = %+v, want %+v", a2, a)
	}
	if netnsInode(t, a.NetNS) == before {
		t.Error("Reattach kept the old namespace")
	}
	serveEcho(t, inInstance(a2), a2.IP)
	mustReach(t, "web-0", inInstance(b), a2.IP, b.IP)

	// Reattach of an instance that is not attached attaches it.
	c, err := m.Reattach(ctx, "default", "sbx-1")
	if err != nil {
		t.Fatal(err)
	}
	if c.IP == a.IP || c.IP == b.IP || !defaultSubnet.Contains(c.IP) {
		t.Errorf("sbx-1 got %s", c.IP)
	}
}

func TestDetach(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	m := e.manager(nil)
	ensure(t, m, "default", netip.Prefix{})
	ensure(t, m, "other", netip.Prefix{})
	a := attach(t, m, "default", "web-0")
	b := attach(t, m, "default", "web-1")

	if err := m.Detach(ctx, "other", "web-0"); !errors.Is(err, ErrConflict) {
		t.Errorf("Detach from the wrong segment: %v, want ErrConflict", err)
	}
	if err := m.Detach(ctx, "default", "web-0"); err != nil {
		t.Fatal(err)
	}
	e.assertGone(a)
	if _, err := m.Attachment("web-0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Attachment after Detach: %v, want ErrNotFound", err)
	}
	if err := m.Detach(ctx, "default", "web-0"); err != nil {
		t.Errorf("second Detach: %v", err)
	}
	if err := m.Detach(ctx, "default", "never-0"); err != nil {
		t.Errorf("Detach of an unknown instance: %v", err)
	}
	// The record is gone from disk too.
	if got := e.manager(nil).Attachments(); len(got) != 1 || got[0].Instance != "web-1" {
		t.Errorf("after restart: %+v, want only web-1", got)
	}
	// A namespace left by an interrupted Attach (no record) is removed.
	stray := filepath.Join(e.netnsDir, "ghost-0")
	if err := createNetNS(stray); err != nil {
		t.Fatal(err)
	}
	if err := m.Detach(ctx, "default", "ghost-0"); err != nil {
		t.Fatal(err)
	}
	e.assertGone(Attachment{Instance: "ghost-0", NetNS: stray, HostVeth: vethName("st-", "ghost-0")})
	// The freed address can be handed out again.
	if err := m.Detach(ctx, "default", "web-1"); err != nil {
		t.Fatal(err)
	}
	e.assertGone(b)
	if got := len(m.segments["default"].ipam.used); got != 0 {
		t.Errorf("%d addresses still held", got)
	}
}

func TestCleanupRemovesOrphans(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	m := e.manager(nil)
	ensure(t, m, "default", netip.Prefix{})
	a := attach(t, m, "default", "web-0")
	b := attach(t, m, "default", "old-0")
	c := attach(t, m, "default", "old-1")

	// Orphans: a namespace file and a strata-named veth nobody records,
	// and a veth strata does not own.
	stray := filepath.Join(e.netnsDir, "crashed-0")
	if err := createNetNS(stray); err != nil {
		t.Fatal(err)
	}
	h := e.netlink()
	defer h.Close()
	for _, v := range []*netlink.Veth{
		{LinkAttrs: netlink.LinkAttrs{Name: "st-0123456789a"}, PeerName: "other0"},
		{LinkAttrs: netlink.LinkAttrs{Name: "foreign0"}, PeerName: "foreign1"},
	} {
		if err := h.LinkAdd(v); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		h := e.netlink()
		defer h.Close()
		if err := deleteLink(h, "foreign0", "veth"); err != nil {
			t.Error(err)
		}
	})

	if err := m.Cleanup(ctx, func(id string) bool { return id == "web-0" }); err != nil {
		t.Fatal(err)
	}
	e.assertGone(b)
	e.assertGone(c)
	e.assertGone(Attachment{Instance: "crashed-0", NetNS: stray, HostVeth: "st-0123456789a"})
	if l, _ := linkByName(h, "foreign0"); l == nil {
		t.Error("Cleanup deleted a veth strata does not own")
	}
	if got := m.Attachments(); len(got) != 1 || got[0].Instance != "web-0" {
		t.Errorf("attachments after Cleanup = %+v, want only web-0", got)
	}
	if err := m.verify(h, m.segments["default"], m.attachments["web-0"]); err != nil {
		t.Errorf("the kept instance is damaged: %v", err)
	}
	serveEcho(t, inInstance(a), a.IP)
	mustReach(t, "the host", e.inHost, a.IP, defaultGW)
}

func TestExhaustionAndWrap(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	m := e.manager(nil)
	tiny := netip.MustParsePrefix("10.213.9.0/29") // instances: .2 to .6
	ensure(t, m, "tiny", tiny)
	var got []string
	for i := range 5 {
		got = append(got, attach(t, m, "tiny", fmt.Sprintf("app-%d", i)).IP.String())
	}
	want := []string{"10.213.9.2", "10.213.9.3", "10.213.9.4", "10.213.9.5", "10.213.9.6"}
	if !slices.Equal(got, want) {
		t.Fatalf("addresses = %v, want %v", got, want)
	}
	_, err := m.Attach(ctx, "tiny", "app-5")
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("Attach to a full segment: %v, want ErrExhausted", err)
	}
	for _, s := range []string{`segment "tiny"`, `instance "app-5"`, "10.213.9.0/29", "no free address", "all 5"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
	e.assertGone(Attachment{Instance: "app-5", NetNS: filepath.Join(e.netnsDir, "app-5"), HostVeth: vethName("st-", "app-5")})

	if err := m.Detach(ctx, "tiny", "app-1"); err != nil {
		t.Fatal(err)
	}
	if a := attach(t, m, "tiny", "app-6"); a.IP.String() != "10.213.9.3" {
		t.Errorf("after wrapping: %s, want 10.213.9.3 (the only free address)", a.IP)
	}
}

func TestEnsureSegment(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	m := e.manager(nil)
	p := netip.MustParsePrefix
	steps := []struct {
		name    string
		segment string
		subnet  netip.Prefix
		want    netip.Prefix // zero when an error is expected
		err     error
		msg     []string // substrings of the error
	}{
		{"given subnet", "a", p("10.213.4.0/24"), p("10.213.4.0/24"), nil, nil},
		{"overlap refused", "b", p("10.213.4.0/23"), netip.Prefix{}, ErrConflict,
			[]string{`segment "b"`, "10.213.4.0/23", `segment "a"`, "10.213.4.0/24"}},
		{"overlap inside", "b", p("10.213.4.128/25"), netip.Prefix{}, ErrConflict,
			[]string{`segment "b"`, `segment "a"`}},
		{"allocated first free", "c", netip.Prefix{}, p("10.213.0.0/24"), nil, nil},
		{"given next to allocated", "d", p("10.213.1.0/24"), p("10.213.1.0/24"), nil, nil},
		{"allocation skips given", "e", netip.Prefix{}, p("10.213.2.0/24"), nil, nil},
		{"idempotent", "a", netip.Prefix{}, p("10.213.4.0/24"), nil, nil},
		{"idempotent with subnet", "a", p("10.213.4.0/24"), p("10.213.4.0/24"), nil, nil},
		{"other subnet refused", "a", p("10.213.5.0/24"), netip.Prefix{}, ErrConflict,
			[]string{`segment "a"`, "10.213.4.0/24", "10.213.5.0/24"}},
		{"host bits", "f", p("10.213.6.1/24"), netip.Prefix{}, ErrInvalid, []string{"10.213.6.0/24"}},
		{"too small", "f", p("10.213.6.0/31"), netip.Prefix{}, ErrInvalid, []string{"/30"}},
		{"bad name", "Web_1", netip.Prefix{}, netip.Prefix{}, ErrInvalid, []string{"DNS label"}},
		{"long name", "payments-production-eu", netip.Prefix{}, p("10.213.3.0/24"), nil, nil},
	}
	for _, s := range steps {
		got, err := m.EnsureSegment(ctx, s.segment, s.subnet)
		switch {
		case s.err != nil:
			if !errors.Is(err, s.err) {
				t.Errorf("%s: err = %v, want %v", s.name, err, s.err)
				continue
			}
			for _, sub := range s.msg {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("%s: error %q does not mention %s", s.name, err, sub)
				}
			}
		case err != nil:
			t.Errorf("%s: %v", s.name, err)
		case got.Subnet != s.want || got.Gateway != s.want.Addr().Next():
			t.Errorf("%s: got %+v, want subnet %s", s.name, got, s.want)
		}
	}
	if _, err := m.Segment("b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused segment was recorded: %v", err)
	}
	long, err := m.Segment("payments-production-eu")
	if err != nil {
		t.Fatal(err)
	}
	if len(long.Bridge) > 15 || !strings.HasPrefix(long.Bridge, "st-payme") {
		t.Errorf("bridge of a long name: %q", long.Bridge)
	}
	h := e.netlink()
	defer h.Close()
	for _, s := range m.Segments() {
		l, err := h.LinkByName(s.Bridge)
		if err != nil {
			t.Errorf("bridge of %s: %v", s.Name, err)
			continue
		}
		if ok, _ := hasAddr(h, l, s.Gateway, s.Subnet); !ok || !isUp(l) {
			t.Errorf("bridge %s: up %v, gateway address %v", s.Bridge, isUp(l), ok)
		}
	}

	// A segment in use is not deleted.
	attach(t, m, "a", "web-0")
	if err := m.DeleteSegment(ctx, "a"); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "web-0") {
		t.Errorf("DeleteSegment of a segment in use: %v", err)
	}
	if err := m.Detach(ctx, "a", "web-0"); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteSegment(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if l, _ := linkByName(h, "st-a"); l != nil {
		t.Error("bridge st-a outlived its segment")
	}
	if err := m.DeleteSegment(ctx, "a"); err != nil {
		t.Errorf("second DeleteSegment: %v", err)
	}
	// A link strata did not make blocks the bridge name.
	taken := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "st-taken"}, PeerName: "taken-peer"}
	if err := h.LinkAdd(taken); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := h.LinkDel(taken); err != nil {
			t.Error(err)
		}
	}()
	if _, err := m.EnsureSegment(ctx, "taken", netip.Prefix{}); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "st-taken") {
		t.Errorf("bridge name taken by a dummy link: %v", err)
	}
	if _, err := m.Segment("taken"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a segment whose bridge failed was recorded: %v", err)
	}
}

func TestAttachErrors(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	m := e.manager(nil)
	ensure(t, m, "default", netip.Prefix{})
	ensure(t, m, "other", netip.Prefix{})
	attach(t, m, "default", "web-0")
	tests := []struct {
		segment, id string
		err         error
	}{
		{"nowhere", "web-1", ErrNotFound},
		{"other", "web-0", ErrConflict},
		{"default", "Web-0", ErrInvalid},
		{"default", "../etc", ErrInvalid},
		{"default", "", ErrInvalid},
		{"Default", "web-1", ErrInvalid},
	}
	for _, tt := range tests {
		if _, err := m.Attach(ctx, tt.segment, tt.id); !errors.Is(err, tt.err) {
			t.Errorf("Attach(%q, %q) = %v, want %v", tt.segment, tt.id, err, tt.err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Attach(cancelled, "default", "web-1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Attach with a cancelled context: %v", err)
	}
}

func TestAttachUndoesFailedSteps(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	m := e.manager(nil)
	ensure(t, m, "default", netip.Prefix{})
	first := attach(t, m, "default", "web-0")
	boom := errors.New("injected failure")
	for _, step := range []string{"bridge", "netns", "veth", "address", "route"} {
		t.Run(step, func(t *testing.T) {
			m.failAt = func(s string) error {
				if s == step {
					return boom
				}
				return nil
			}
			_, err := m.Attach(ctx, "default", "web-1")
			m.failAt = nil
			if !errors.Is(err, boom) {
				t.Fatalf("Attach: %v, want the injected failure", err)
			}
			e.assertGone(Attachment{Instance: "web-1", NetNS: filepath.Join(e.netnsDir, "web-1"), HostVeth: vethName("st-", "web-1")})
			if _, err := m.Attachment("web-1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("failed attachment recorded: %v", err)
			}
			if got := e.manager(nil).Attachments(); len(got) != 1 {
				t.Errorf("state file holds %d attachments, want 1", len(got))
			}
			e.last = m
			// The address the failed attempt took is free again.
			if got := m.segments["default"].ipam.last; got != first.IP {
				t.Errorf("allocation cursor = %s, want %s", got, first.IP)
			}
		})
	}
	// A failed rebuild keeps the record; the next Attach repairs.
	m.failAt = func(s string) error {
		if s == "route" {
			return boom
		}
		return nil
	}
	if _, err := m.Reattach(ctx, "default", "web-0"); !errors.Is(err, boom) {
		t.Fatalf("Reattach: %v, want the injected failure", err)
	}
	m.failAt = nil
	e.assertGone(first)
	if a := attach(t, m, "default", "web-0"); a.IP != first.IP {
		t.Errorf("repaired with %s, want %s", a.IP, first.IP)
	}
	b := attach(t, m, "default", "web-1")
	if b.IP != first.IP.Next() {
		t.Errorf("web-1 got %s, want %s", b.IP, first.IP.Next())
	}
	// A new segment whose bridge fails is not recorded.
	m.failAt = func(s string) error {
		if s == "bridge" {
			return boom
		}
		return nil
	}
	if _, err := m.EnsureSegment(ctx, "broken", netip.Prefix{}); !errors.Is(err, boom) {
		t.Fatalf("EnsureSegment: %v, want the injected failure", err)
	}
	m.failAt = nil
	if _, err := m.Segment("broken"); !errors.Is(err, ErrNotFound) {
		t.Errorf("failed segment recorded: %v", err)
	}
}

func TestForwarding(t *testing.T) {
	e := newTestEnv(t)
	const knob = "/proc/sys/net/ipv4/ip_forward"
	read := func() string {
		var v []byte
		if err := e.inHost(func() error {
			var err error
			v, err = os.ReadFile(knob)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(v))
	}
	rootBefore, err := os.ReadFile(knob)
	if err != nil {
		t.Fatal(err)
	}
	// A new namespace may inherit the machine's value; start from 0.
	if err := e.inHost(func() error { return os.WriteFile(knob, []byte("0\n"), 0o644) }); err != nil {
		t.Fatal(err)
	}
	ensure(t, e.manager(nil), "default", netip.Prefix{})
	if got := read(); got != "0" {
		t.Errorf("without Forwarding: ip_forward = %s, want 0", got)
	}
	ensure(t, e.manager(func(o *Options) { o.Forwarding = true }), "default", netip.Prefix{})
	if got := read(); got != "1" {
		t.Errorf("with Forwarding: ip_forward = %s, want 1", got)
	}
	rootAfter, err := os.ReadFile(knob)
	if err != nil {
		t.Fatal(err)
	}
	if string(rootAfter) != string(rootBefore) {
		t.Errorf("the machine's ip_forward changed from %q to %q", rootBefore, rootAfter)
	}
}

func TestConcurrentAttach(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager(nil)
	ensure(t, m, "default", netip.Prefix{})
	const n = 8
	got := make([]Attachment, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i], errs[i] = m.Attach(context.Background(), "default", fmt.Sprintf("web-%d", i))
		})
	}
	wg.Wait()
	seen := map[netip.Addr]string{}
	for i, a := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if other, dup := seen[a.IP]; dup {
			t.Errorf("%s and %s both got %s", other, a.Instance, a.IP)
		}
		seen[a.IP] = a.Instance
	}
	serveEcho(t, inInstance(got[0]), got[0].IP)
	for _, a := range got[1:] {
		mustReach(t, a.Instance, inInstance(a), got[0].IP, a.IP)
	}
}

func BenchmarkAttachDetach(b *testing.B) {
	e := newTestEnv(b)
	m := e.manager(func(o *Options) { o.Logger = nil })
	ensure(b, m, "default", netip.Prefix{})
	ctx := context.Background()
	for b.Loop() {
		if _, err := m.Attach(ctx, "default", "bench-0"); err != nil {
			b.Fatal(err)
		}
		if err := m.Detach(ctx, "default", "bench-0"); err != nil {
			b.Fatal(err)
		}
	}
}
