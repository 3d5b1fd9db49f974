package netseg

import (
	"bytes"
	"context"
	"encoding/binary"
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
	"golang.org/x/sys/unix"
)

// attachTap is AttachTap that fails the test on error.
func attachTap(t testing.TB, m *Manager, seg, id string) Attachment {
	t.Helper()
	a, err := m.AttachTap(context.Background(), seg, id)
	if err != nil {
		t.Fatalf("AttachTap(%s, %s): %v", seg, id, err)
	}
	return a
}

// openTapFile is OpenTap that fails the test on error and closes the file when
// the test ends.
func openTapFile(t testing.TB, m *Manager, id string) *os.File {
	t.Helper()
	f, err := m.OpenTap(id)
	if err != nil {
		t.Fatalf("OpenTap(%s): %v", id, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// tuntap returns the tun or tap device called name in the test namespace,
// nil if there is none.
func (e *testEnv) tuntap(name string) *netlink.Tuntap {
	e.t.Helper()
	h := e.netlink()
	defer h.Close()
	l, err := linkByName(h, name)
	if err != nil {
		e.t.Fatal(err)
	}
	if l == nil {
		return nil
	}
	tt, ok := l.(*netlink.Tuntap)
	if !ok {
		e.t.Fatalf("link %s is a %s, not a tun or tap", name, l.Type())
	}
	return tt
}

// addTuntap creates a tun or tap device in the test namespace, as someone
// other than the manager would.
func (e *testEnv) addTuntap(tt *netlink.Tuntap) {
	e.t.Helper()
	h := e.netlink()
	defer h.Close()
	if err := e.inHost(func() error { return h.LinkAdd(tt) }); err != nil {
		e.t.Fatalf("create %s: %v", tt.Name, err)
	}
	for _, f := range tt.Fds {
		f.Close()
	}
}

// assertTapGone checks that a's tap is gone.
func (e *testEnv) assertTapGone(a Attachment) {
	e.t.Helper()
	if tt := e.tuntap(a.Tap); tt != nil {
		e.t.Errorf("tap %s of %s still there", a.Tap, a.Instance)
	}
}

// tunSetIff attaches a new /dev/net/tun file to device name with flags in
// the test namespace, and closes it again.
func (e *testEnv) tunSetIff(name string, flags uint16) error {
	return e.inHost(func() error {
		fd, err := unix.Open(tunDevice, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		ifr.SetUint16(flags)
		return unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	})
}

func TestAttachTap(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	m := e.manager(nil)
	ensure(t, m, "default", netip.Prefix{})
	c := attach(t, m, "default", "web-0")
	v := attachTap(t, m, "default", "vm-0")
	ip := c.IP.Next()
	want := Attachment{
		Instance: "vm-0", Segment: "default", Kind: KindTap, IP: ip, Subnet: defaultSubnet,
		Gateway: defaultGW, MAC: macFor(ip), Tap: tapName("st-", "vm-0"),
	}
	if fmt.Sprint(v) != fmt.Sprint(want) {
		t.Fatalf("attachment = %+v\nwant %+v", v, want)
	}

	tt := e.tuntap(v.Tap)
	if tt == nil {
		t.Fatalf("tap %s is not in the host namespace", v.Tap)
	}
	h := e.netlink()
	defer h.Close()
	br, err := h.LinkByName("st-default")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		ok   bool
	}{
		{"a tap", tt.Mode == netlink.TUNTAP_MODE_TAP},
		{"without packet information", tt.Flags&netlink.TUNTAP_NO_PI != 0},
		{"with virtio_net_hdr", tt.Flags&netlink.TUNTAP_VNET_HDR != 0},
		{"single-queue", tt.Flags&netlink.TUNTAP_MULTI_QUEUE == 0},
		{"persistent", !tt.NonPersist},
		{"a port of st-default", tt.MasterIndex == br.Attrs().Index},
		{"up", isUp(tt)},
	} {
		if !c.ok {
			t.Errorf("tap %s is not %s: %+v", v.Tap, c.what, tt)
		}
	}
	// The tap is made in the Host namespace, not where the process runs.
	if l, err := netlink.LinkByName(v.Tap); err == nil {
		t.Errorf("tap %s is also in the machine's own namespace (a %s)", v.Tap, l.Type())
	}

	// Idempotent: the same attachment on the same device.
	if again := attachTap(t, m, "default", "vm-0"); fmt.Sprint(again) != fmt.Sprint(v) {
		t.Errorf("second AttachTap = %+v, want %+v", again, v)
	}
	if tt2 := e.tuntap(v.Tap); tt2 == nil || tt2.Index != tt.Index {
		t.Error("a second AttachTap of an intact tap replaced it")
	}
	if got, want := fmt.Sprint(m.Attachments()), fmt.Sprint([]Attachment{v, c}); got != want {
		t.Errorf("Attachments = %s\nwant %s", got, want)
	}
	if got, err := m.Attachment("vm-0"); err != nil || fmt.Sprint(got) != fmt.Sprint(v) {
		t.Errorf("Attachment(vm-0) = %+v, %v", got, err)
	}

	// A tap holds its segment as a veth does.
	if err := m.Detach(ctx, "default", "web-0"); err != nil {
		t.Fatal(err)
	}
	err = m.DeleteSegment(ctx, "default")
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "vm-0") {
		t.Errorf("DeleteSegment with a tap attached: %v, want ErrConflict naming vm-0", err)
	}
}

func TestOpenTap(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager(nil)
	ensure(t, m, "default", netip.Prefix{})
	c := attach(t, m, "default", "web-0")
	v := attachTap(t, m, "default", "vm-0")

	// The tap takes strata's flags and refuses others: a multi-queue open
	// of it, or a tun open, is EINVAL.
	for _, tc := range []struct {
		name  string
		flags uint16
		want  error
	}{
		{"multi-queue", tapFlags | unix.IFF_MULTI_QUEUE, unix.EINVAL},
		{"tun", unix.IFF_TUN | unix.IFF_NO_PI, unix.EINVAL},
		{"strata's", tapFlags, nil},
	} {
		if err := e.tunSetIff(v.Tap, tc.flags); !errors.Is(err, tc.want) {
			t.Errorf("TUNSETIFF with %s flags = %v, want %v", tc.name, err, tc.want)
		}
	}

	f := openTapFile(t, m, "vm-0")
	if _, err := m.OpenTap("vm-0"); !errors.Is(err, ErrConflict) {
		t.Errorf("second OpenTap while the first is open: %v, want ErrConflict", err)
	}
	waitTapUp(t, e, v.Tap)

	// web-0 sends datagrams to the VM; the test answers for the VM
	// through the file, as QEMU would for a guest: first the ARP request
	// for the VM's address, then the datagram itself, sent to the MAC the
	// answer gave.
	var conn net.Conn
	err := inInstance(c)(func() error {
		var err error
		conn, err = net.Dial("udp4", netip.AddrPortFrom(v.IP, 9).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	payload := []byte("hello, vm-0")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			_, _ = conn.Write(payload) // refused until the VM answers ARP
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	defer wg.Wait()
	defer close(stop)

	if err := f.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatalf("the tap file takes no deadline: %v", err)
	}
	arpAnswered := false
	buf := make([]byte, 65536)
	for {
		n, err := f.Read(buf)
		if err != nil {
			t.Fatalf("read from the tap (ARP answered: %v): %v", arpAnswered, err)
		}
		if n < vnetHdrLen+ethHdrLen {
			t.Fatalf("read %d bytes from the tap, less than a virtio_net_hdr and an Ethernet header", n)
		}
		frame := buf[vnetHdrLen:n]
		if req, ok := parseARPRequest(frame); ok && req.target == v.IP {
			if req.sender != c.IP || !bytes.Equal(req.senderMAC, c.MAC) {
				t.Errorf("ARP request for %s from %s (%s), want from %s (%s)", v.IP, req.sender, req.senderMAC, c.IP, c.MAC)
			}
			if _, err := f.Write(arpReply(v.MAC, v.IP, req.senderMAC, req.sender)); err != nil {
				t.Fatalf("write an ARP reply to the tap: %v", err)
			}
			arpAnswered = true
			continue
		}
		if got, ok := parseUDP(frame, v.MAC, c.IP, v.IP); ok {
			if !arpAnswered {
				t.Error("a datagram reached the VM's MAC before the VM answered ARP")
			}
			if !bytes.Equal(got, payload) {
				t.Errorf("datagram = %q, want %q", got, payload)
			}
			break
		}
	}

	// The tap outlives the file (QEMU exits, the VM restarts).
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if e.tuntap(v.Tap) == nil {
		t.Fatal("the tap went away with its file")
	}
	openTapFile(t, m, "vm-0")
}

func TestOpenTapErrors(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	m := e.manager(nil)
	ensure(t, m, "default", netip.Prefix{})
	attach(t, m, "default", "web-0")
	v := attachTap(t, m, "default", "vm-0")
	for _, id := range []string{"web-0", "vm-1"} {
		if _, err := m.OpenTap(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("OpenTap(%s) = %v, want ErrNotFound", id, err)
		}
	}
	if _, err := m.OpenTap("../vm"); !errors.Is(err, ErrInvalid) {
		t.Errorf("OpenTap(../vm) = %v, want ErrInvalid", err)
	}
	// A tap deleted behind the manager's back is not opened (TUNSETIFF
	// would make a new, unconnected one), nor made.
	h := e.netlink()
	defer h.Close()
	if err := deleteLink(h, v.Tap, tapType); err != nil {
		t.Fatal(err)
	}
	_, err := m.OpenTap("vm-0")
	if err == nil || !strings.Contains(err.Error(), "AttachTap") {
		t.Errorf("OpenTap of a deleted tap = %v, want an error that says AttachTap repairs it", err)
	}
	e.assertTapGone(v)
	attachTap(t, m, "default", "vm-0")
	openTapFile(t, m, "vm-0")
	if err := m.Detach(ctx, "default", "vm-0"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.OpenTap("vm-0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenTap after Detach = %v, want ErrNotFound", err)
	}
}

// waitTapUp waits until the tap called name has a carrier (a file is
// attached to it).
func waitTapUp(t *testing.T, e *testEnv, name string) {
	t.Helper()
	h := e.netlink()
	defer h.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		up, err := operUp(h, name)
		if err != nil {
			t.Fatal(err)
		}
		if up {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tap %s is not operationally up 5s after it was opened", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Frames as they pass through a tap file with IFF_VNET_HDR.
const (
	vnetHdrLen = 10 // struct virtio_net_hdr, the default header size
	ethHdrLen  = 14
	etherARP   = 0x0806
	etherIPv4  = 0x0800
)

type arpRequest struct {
	sender, target netip.Addr
	senderMAC      net.HardwareAddr
}

// parseARPRequest reads an Ethernet frame holding an IPv4 ARP request.
func parseARPRequest(frame []byte) (arpRequest, bool) {
	if len(frame) < ethHdrLen+28 || binary.BigEndian.Uint16(frame[12:]) != etherARP {
		return arpRequest{}, false
	}
	a := frame[ethHdrLen:]
	if binary.BigEndian.Uint16(a[0:]) != 1 || binary.BigEndian.Uint16(a[2:]) != etherIPv4 ||
		a[4] != 6 || a[5] != 4 || binary.BigEndian.Uint16(a[6:]) != 1 {
		return arpRequest{}, false
	}
	return arpRequest{
		senderMAC: net.HardwareAddr(bytes.Clone(a[8:14])),
		sender:    netip.AddrFrom4([4]byte(a[14:18])),
		target:    netip.AddrFrom4([4]byte(a[24:28])),
	}, true
}

// arpReply is what a VM with mac and ip writes to its tap to answer the
// ARP request of (toMAC, to): a zero virtio_net_hdr, then the frame.
func arpReply(mac net.HardwareAddr, ip netip.Addr, toMAC net.HardwareAddr, to netip.Addr) []byte {
	b := make([]byte, vnetHdrLen, vnetHdrLen+60)
	b = append(b, toMAC...)
	b = append(b, mac...)
	b = binary.BigEndian.AppendUint16(b, etherARP)
	b = binary.BigEndian.AppendUint16(b, 1) // Ethernet
	b = binary.BigEndian.AppendUint16(b, etherIPv4)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, 2) // reply
	b = append(b, mac...)
	b = append(b, ip.AsSlice()...)
	b = append(b, toMAC...)
	b = append(b, to.AsSlice()...)
	return append(b, make([]byte, vnetHdrLen+60-len(b))...) // pad to the minimum frame
}

// parseUDP returns the payload of frame if it is a UDP datagram from src
// to dst sent to the hardware address mac.
func parseUDP(frame []byte, mac net.HardwareAddr, src, dst netip.Addr) ([]byte, bool) {
	if len(frame) < ethHdrLen+20 || !bytes.Equal(frame[0:6], mac) || binary.BigEndian.Uint16(frame[12:]) != etherIPv4 {
		return nil, false
	}
	ip := frame[ethHdrLen:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if ip[0]>>4 != 4 || ip[9] != unix.IPPROTO_UDP || ihl < 20 || total > len(ip) || total < ihl+8 ||
		netip.AddrFrom4([4]byte(ip[12:16])) != src || netip.AddrFrom4([4]byte(ip[16:20])) != dst {
		return nil, false
	}
	return ip[ihl+8 : total], true
}

func TestAttachTapRepairs(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, e *testEnv, h *netlink.Handle, a Attachment)
	}{
		{"tap deleted", func(t *testing.T, e *testEnv, h *netlink.Handle, a Attachment) {
			if err := deleteLink(h, a.Tap, tapType); err != nil {
				t.Fatal(err)
			}
		}},
		{"tap down", func(t *testing.T, e *testEnv, h *netlink.Handle, a Attachment) {
			if err := h.LinkSetDown(e.tuntap(a.Tap)); err != nil {
				t.Fatal(err)
			}
		}},
		{"tap off the bridge", func(t *testing.T, e *testEnv, h *netlink.Handle, a Attachment) {
			if err := h.LinkSetNoMaster(e.tuntap(a.Tap)); err != nil {
				t.Fatal(err)
			}
		}},
		{"bridge deleted", func(t *testing.T, e *testEnv, h *netlink.Handle, a Attachment) {
			if err := deleteLink(h, "st-default", "bridge"); err != nil {
				t.Fatal(err)
			}
		}},
		{"multi-queue tap in its place", func(t *testing.T, e *testEnv, h *netlink.Handle, a Attachment) {
			if err := deleteLink(h, a.Tap, tapType); err != nil {
				t.Fatal(err)
			}
			e.addTuntap(&netlink.Tuntap{
				LinkAttrs: netlink.LinkAttrs{Name: a.Tap}, Mode: netlink.TUNTAP_MODE_TAP, Queues: 1,
				Flags: netlink.TUNTAP_MULTI_QUEUE_DEFAULTS | netlink.TUNTAP_VNET_HDR,
			})
		}},
		{"tun in its place", func(t *testing.T, e *testEnv, h *netlink.Handle, a Attachment) {
			if err := deleteLink(h, a.Tap, tapType); err != nil {
				t.Fatal(err)
			}
			e.addTuntap(&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: a.Tap}, Mode: netlink.TUNTAP_MODE_TUN})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			m := e.manager(nil)
			ensure(t, m, "default", netip.Prefix{})
			a := attachTap(t, m, "default", "vm-0")
			h := e.netlink()
			defer h.Close()
			tt.damage(t, e, h, a)
			if err := m.verifyTap(h, m.segments["default"], m.attachments["vm-0"]); err == nil {
				t.Fatal("verifyTap finds nothing wrong after the damage")
			}
			a2 := attachTap(t, m, "default", "vm-0")
			if fmt.Sprint(a2) != fmt.Sprint(a) {
				t.Errorf("repaired attachment = %+v, want %+v", a2, a)
			}
			if err := m.verifyTap(h, m.segments["default"], m.attachments["vm-0"]); err != nil {
				t.Errorf("still broken after AttachTap: %v", err)
			}
			openTapFile(t, m, "vm-0")
		})
	}
}

func TestTapVethConflict(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	m := e.manager(nil)
	ensure(t, m, "default", netip.Prefix{})
	ensure(t, m, "other", netip.Prefix{})
	c := attach(t, m, "default", "web-0")
	v := attachTap(t, m, "default", "vm-0")

	calls := []struct {
		name string
		call func() error
		want error
		msg  []string
	}{
		{"tap for a veth instance", func() error { _, err := m.AttachTap(ctx, "default", "web-0"); return err },
			ErrConflict, []string{`"web-0"`, "with a veth", "detach it before attaching it with a tap"}},
		{"veth for a tap instance", func() error { _, err := m.Attach(ctx, "default", "vm-0"); return err },
			ErrConflict, []string{`"vm-0"`, "with a tap", "detach it before attaching it with a veth"}},
		{"reattach of a tap instance", func() error { _, err := m.Reattach(ctx, "default", "vm-0"); return err },
			ErrConflict, []string{"with a tap"}},
		{"tap on another segment", func() error { _, err := m.AttachTap(ctx, "other", "vm-0"); return err },
			ErrConflict, []string{`attached to segment "default"`}},
		{"unknown segment", func() error { _, err := m.AttachTap(ctx, "nowhere", "vm-1"); return err }, ErrNotFound, nil},
		{"bad instance", func() error { _, err := m.AttachTap(ctx, "default", "VM-1"); return err }, ErrInvalid, nil},
		{"bad segment", func() error { _, err := m.AttachTap(ctx, "Default", "vm-1"); return err }, ErrInvalid, nil},
	}
	for _, tc := range calls {
		err := tc.call()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			continue
		}
		for _, s := range tc.msg {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not say %s", tc.name, err, s)
			}
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.AttachTap(cancelled, "default", "vm-1"); !errors.Is(err, context.Canceled) {
		t.Errorf("AttachTap with a cancelled context: %v", err)
	}
	// The refused calls changed nothing.
	h := e.netlink()
	defer h.Close()
	seg := m.segments["default"]
	if err := m.verify(h, seg, m.attachments["web-0"]); err != nil {
		t.Errorf("web-0 after the refused calls: %v", err)
	}
	if err := m.verifyTap(h, seg, m.attachments["vm-0"]); err != nil {
		t.Errorf("vm-0 after the refused calls: %v", err)
	}
	if n := len(seg.ipam.used); n != 2 {
		t.Errorf("%d addresses held, want 2", n)
	}

	// Detached, an instance may come back as the other kind.
	if err := m.Detach(ctx, "default", "web-0"); err != nil {
		t.Fatal(err)
	}
	w := attachTap(t, m, "default", "web-0")
	e.assertGone(c)
	if w.Kind != KindTap || w.Tap != tapName("st-", "web-0") || w.NetNS != "" || w.HostVeth != "" {
		t.Errorf("web-0 as a tap: %+v", w)
	}
	if err := m.Detach(ctx, "default", "vm-0"); err != nil {
		t.Fatal(err)
	}
	x := attach(t, m, "default", "vm-0")
	e.assertTapGone(v)
	if x.Kind != KindVeth || x.Tap != "" || !isNetNSMount(x.NetNS) {
		t.Errorf("vm-0 as a veth: %+v", x)
	}
}

func TestDetachTap(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	m := e.manager(nil)
	ensure(t, m, "default", netip.Prefix{})
	ensure(t, m, "other", netip.Prefix{})
	v := attachTap(t, m, "default", "vm-0")

	if err := m.Detach(ctx, "other", "vm-0"); !errors.Is(err, ErrConflict) {
		t.Errorf("Detach from the wrong segment: %v, want ErrConflict", err)
	}
	f := openTapFile(t, m, "vm-0") // a VM still holding the tap does not stop Detach
	if err := m.Detach(ctx, "default", "vm-0"); err != nil {
		t.Fatal(err)
	}
	e.assertTapGone(v)
	if _, err := f.Write(arpReply(v.MAC, v.IP, v.MAC, v.IP)); err == nil {
		t.Error("the VM's file still carries frames after Detach")
	}
	if _, err := m.Attachment("vm-0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Attachment after Detach: %v, want ErrNotFound", err)
	}
	if n := len(m.segments["default"].ipam.used); n != 0 {
		t.Errorf("%d addresses still held", n)
	}
	if err := m.Detach(ctx, "default", "vm-0"); err != nil {
		t.Errorf("second Detach: %v", err)
	}
	if got := e.manager(nil).Attachments(); len(got) != 0 {
		t.Errorf("after restart: %+v, want none", got)
	}
	// A tap left by an interrupted AttachTap (no record) is removed.
	ghost := Attachment{Instance: "ghost-0", Tap: tapName("st-", "ghost-0")}
	e.addTuntap(&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: ghost.Tap}, Mode: netlink.TUNTAP_MODE_TAP, Flags: netlink.TUNTAP_NO_PI})
	if err := m.Detach(ctx, "default", "ghost-0"); err != nil {
		t.Fatal(err)
	}
	e.assertTapGone(ghost)
}

func TestCleanupRemovesStrayTaps(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	m := e.manager(nil)
	ensure(t, m, "default", netip.Prefix{})
	keep := attachTap(t, m, "default", "vm-0")
	drop := attachTap(t, m, "default", "vm-1")
	c := attach(t, m, "default", "web-0")

	// A strata-named tap nobody records, and a tap strata does not own.
	for _, name := range []string{"st-0123456789a", "foreign0"} {
		e.addTuntap(&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name}, Mode: netlink.TUNTAP_MODE_TAP, Flags: netlink.TUNTAP_NO_PI})
	}
	t.Cleanup(func() {
		h := e.netlink()
		defer h.Close()
		if err := deleteLink(h, "foreign0", tapType); err != nil {
			t.Error(err)
		}
	})

	if err := m.Cleanup(ctx, func(id string) bool { return id != "vm-1" }); err != nil {
		t.Fatal(err)
	}
	e.assertTapGone(drop)
	e.assertTapGone(Attachment{Instance: "stray", Tap: "st-0123456789a"})
	if e.tuntap("foreign0") == nil {
		t.Error("Cleanup deleted a tap strata does not own")
	}
	if got := m.Attachments(); len(got) != 2 || got[0].Instance != "vm-0" || got[1].Instance != "web-0" {
		t.Errorf("attachments after Cleanup = %+v, want vm-0 and web-0", got)
	}
	h := e.netlink()
	defer h.Close()
	if err := m.verifyTap(h, m.segments["default"], m.attachments[keep.Instance]); err != nil {
		t.Errorf("the kept tap is damaged: %v", err)
	}
	if err := m.verify(h, m.segments["default"], m.attachments[c.Instance]); err != nil {
		t.Errorf("the kept veth is damaged: %v", err)
	}
}

func TestTapRestart(t *testing.T) {
	e := newTestEnv(t)
	m1 := e.manager(nil)
	ensure(t, m1, "default", netip.Prefix{})
	v := attachTap(t, m1, "default", "vm-0")
	c := attach(t, m1, "default", "web-0")
	index := e.tuntap(v.Tap).Index

	m2 := e.manager(nil) // the daemon restarted
	if got, want := fmt.Sprint(m2.Attachments()), fmt.Sprint([]Attachment{v, c}); got != want {
		t.Errorf("attachments after restart = %s\nwant %s", got, want)
	}
	if v2 := attachTap(t, m2, "default", "vm-0"); fmt.Sprint(v2) != fmt.Sprint(v) {
		t.Errorf("AttachTap after restart = %+v, want %+v", v2, v)
	}
	if e.tuntap(v.Tap).Index != index {
		t.Error("AttachTap after restart replaced an intact tap")
	}
	openTapFile(t, m2, "vm-0").Close()

	// After a reboot nothing is left on the host; the address stays.
	h := e.netlink()
	defer h.Close()
	for _, l := range []struct{ name, kind string }{{v.Tap, tapType}, {"st-default", "bridge"}} {
		if err := deleteLink(h, l.name, l.kind); err != nil {
			t.Fatal(err)
		}
	}
	m3 := e.manager(nil)
	ensure(t, m3, "default", netip.Prefix{})
	if v3 := attachTap(t, m3, "default", "vm-0"); fmt.Sprint(v3) != fmt.Sprint(v) {
		t.Errorf("AttachTap after a reboot = %+v, want %+v", v3, v)
	}
	openTapFile(t, m3, "vm-0")
	if w := attachTap(t, m3, "default", "vm-1"); w.IP != c.IP.Next() {
		t.Errorf("vm-1 got %s, want %s (allocation continues where the last manager stopped)", w.IP, c.IP.Next())
	}
}

func TestAttachTapUndoesFailedSteps(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	m := e.manager(nil)
	ensure(t, m, "default", netip.Prefix{})
	first := attachTap(t, m, "default", "vm-0")
	boom := errors.New("injected failure")
	failAt := func(step string) func(string) error {
		return func(s string) error {
			if s == step {
				return boom
			}
			return nil
		}
	}
	for _, step := range []string{"bridge", "tap", "port"} {
		t.Run(step, func(t *testing.T) {
			m.failAt = failAt(step)
			_, err := m.AttachTap(ctx, "default", "vm-1")
			m.failAt = nil
			if !errors.Is(err, boom) {
				t.Fatalf("AttachTap: %v, want the injected failure", err)
			}
			e.assertTapGone(Attachment{Instance: "vm-1", Tap: tapName("st-", "vm-1")})
			if _, err := m.Attachment("vm-1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("failed attachment recorded: %v", err)
			}
			if got := e.manager(nil).Attachments(); len(got) != 1 {
				t.Errorf("state file holds %d attachments, want 1", len(got))
			}
			e.last = m
			if got := m.segments["default"].ipam.last; got != first.IP {
				t.Errorf("allocation cursor = %s, want %s", got, first.IP)
			}
		})
	}
	// A failed repair keeps the record; the next AttachTap repairs.
	h := e.netlink()
	defer h.Close()
	if err := h.LinkSetDown(e.tuntap(first.Tap)); err != nil {
		t.Fatal(err)
	}
	m.failAt = failAt("port")
	if _, err := m.AttachTap(ctx, "default", "vm-0"); !errors.Is(err, boom) {
		t.Fatalf("AttachTap: %v, want the injected failure", err)
	}
	m.failAt = nil
	e.assertTapGone(first)
	if a := attachTap(t, m, "default", "vm-0"); fmt.Sprint(a) != fmt.Sprint(first) {
		t.Errorf("repaired as %+v, want %+v", a, first)
	}
	if b := attachTap(t, m, "default", "vm-1"); b.IP != first.IP.Next() {
		t.Errorf("vm-1 got %s, want %s", b.IP, first.IP.Next())
	}
}

func BenchmarkAttachTapDetach(b *testing.B) {
	e := newTestEnv(b)
	m := e.manager(func(o *Options) { o.Logger = nil })
	ensure(b, m, "default", netip.Prefix{})
	ctx := context.Background()
	for b.Loop() {
		if _, err := m.AttachTap(ctx, "default", "bench-0"); err != nil {
			b.Fatal(err)
		}
		if err := m.Detach(ctx, "default", "bench-0"); err != nil {
			b.Fatal(err)
		}
	}
}
