package netseg

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// udpFrame is what a VM with srcMAC writes to its tap to send a UDP
// datagram from src to dst:port (to the hardware address dstMAC): a zero
// virtio_net_hdr, then the frame. The source address is whatever the
// sender claims.
func udpFrame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, port uint16, payload []byte) []byte {
	b := make([]byte, vnetHdrLen, vnetHdrLen+ethHdrLen+28+len(payload))
	b = append(b, dstMAC...)
	b = append(b, srcMAC...)
	b = binary.BigEndian.AppendUint16(b, etherIPv4)
	ip := b[len(b):]
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(28+len(payload)))
	b = append(b, 0, 0, 0x40, 0, 64, unix.IPPROTO_UDP, 0, 0) // id, DF, TTL, protocol, checksum
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	ip = ip[:20]
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	b = binary.BigEndian.AppendUint16(b, 40000) // source port
	b = binary.BigEndian.AppendUint16(b, port)
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(payload)))
	b = append(b, 0, 0) // no checksum
	return append(b, payload...)
}

// neighMAC is the hardware address the namespace of a has cached for ip,
// or nil.
func neighMAC(t *testing.T, a Attachment, ip netip.Addr) net.HardwareAddr {
	t.Helper()
	ns, err := netns.GetFromPath(a.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	neighs, err := h.NeighList(0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighs {
		if got, _ := netip.AddrFromSlice(n.IP); got.Unmap() == ip {
			return n.HardwareAddr
		}
	}
	return nil
}

// TestPortGuard plays an attacker on a segment: a VM that writes frames to
// its tap as it likes. It answers ARP for the gateway and for a neighbour,
// and sends datagrams with a neighbour's and another segment's source
// address and with a neighbour's MAC. None of it may take: the victim keeps
// the true MACs, its traffic does not reach the attacker, and the forged
// datagrams are not delivered; the attacker's honest datagram is, and the
// victim's reaches its neighbour.
func TestPortGuard(t *testing.T) {
	e := newTestEnv(t)
	m := e.manager(nil)
	ctx := context.Background()
	seg := ensure(t, m, "default", netip.Prefix{})
	ensure(t, m, "other", netip.Prefix{})
	victim := attach(t, m, "default", "web-0")
	peer := attach(t, m, "default", "db-0")
	other := attach(t, m, "other", "x-0")
	spy := attachTap(t, m, "default", "vm-0")
	f := openTapFile(t, m, "vm-0")
	waitTapUp(t, e, spy.Tap)

	// The host side: strict reverse-path filtering on the bridge.
	err := e.inHost(func() error {
		v, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + seg.Bridge + "/rp_filter")
		if err == nil && strings.TrimSpace(string(v)) != "1" {
			t.Errorf("rp_filter of bridge %s = %q, want 1", seg.Bridge, v)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// peer listens for datagrams and records who they claim to come from.
	const port = 7009
	var pc net.PacketConn
	if err := inInstance(peer)(func() error {
		var err error
		pc, err = net.ListenPacket("udp4", netip.AddrPortFrom(peer.IP, port).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var mu sync.Mutex
	got := map[string]netip.Addr{} // payload -> source
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			src, _ := netip.AddrFromSlice(from.(*net.UDPAddr).IP)
			mu.Lock()
			got[string(buf[:n])] = src.Unmap()
			mu.Unlock()
		}
	}()

	// The victim talks to the gateway and to peer, so that both are in
	// its neighbour table, then keeps talking while the attacker answers
	// ARP for both, for longer than the kernel's 1 s lock time.
	var vc net.Conn
	if err := inInstance(victim)(func() error {
		var err error
		vc, err = net.Dial("udp4", netip.AddrPortFrom(peer.IP, port).String())
		if err == nil {
			var gw net.Conn
			gw, err = net.Dial("udp4", netip.AddrPortFrom(seg.Gateway, 9).String())
			if err == nil {
				_, _ = gw.Write([]byte("hello, gateway"))
				_ = gw.Close()
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	if _, err := vc.Write([]byte("honest from web-0")); err != nil {
		t.Fatal(err)
	}
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	stolen := 0 // victim's frames seen on the attacker's tap
	buf := make([]byte, 65536)
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); {
		for _, claim := range []netip.Addr{seg.Gateway, peer.IP} {
			for _, to := range []net.HardwareAddr{victim.MAC, bcast} {
				if _, err := f.Write(arpReply(spy.MAC, claim, to, victim.IP)); err != nil {
					t.Fatal(err)
				}
			}
		}
		_, _ = vc.Write([]byte("from web-0, to peer"))
		_ = f.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		for {
			n, err := f.Read(buf)
			if err != nil {
				break
			}
			if n > vnetHdrLen+ethHdrLen+20 {
				frame := buf[vnetHdrLen:n]
				if _, ok := parseUDP(frame, spy.MAC, victim.IP, peer.IP); ok {
					stolen++
				}
			}
		}
	}
	if stolen > 0 {
		t.Errorf("%d datagrams of web-0 to db-0 reached the attacker's tap", stolen)
	}
	for _, ip := range []netip.Addr{seg.Gateway, peer.IP} {
		want := macFor(ip)
		if ip == peer.IP {
			want = peer.MAC
		}
		if mac := neighMAC(t, victim, ip); !bytes.Equal(mac, want) {
			t.Errorf("web-0 has %s at %s, want %s (the attacker is %s)", ip, mac, want, spy.MAC)
		}
	}

	// Forged datagrams to peer, and the attacker's honest one.
	forged := []struct {
		what    string
		srcMAC  net.HardwareAddr
		src     netip.Addr
		payload string
	}{
		{"a neighbour's address", spy.MAC, victim.IP, "forged web-0"},
		{"another segment's instance's address", spy.MAC, other.IP, "forged x-0"},
		{"the gateway's address", spy.MAC, seg.Gateway, "forged gateway"},
		{"a neighbour's MAC and address", victim.MAC, victim.IP, "forged web-0 MAC"},
		{"its own address", spy.MAC, spy.IP, "honest vm-0"},
	}
	for range 5 {
		for _, fg := range forged {
			if _, err := f.Write(udpFrame(fg.srcMAC, peer.MAC, fg.src, peer.IP, port, []byte(fg.payload))); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	_ = pc.Close()
	<-done
	for _, fg := range forged {
		src, ok := got[fg.payload]
		honest := fg.src == spy.IP
		switch {
		case honest && !ok:
			t.Errorf("the attacker's datagram from %s was not delivered: the test's frames do not work", fg.what)
		case !honest && ok:
			t.Errorf("a datagram with %s was delivered, as from %s", fg.what, src)
		}
	}
	if src, ok := got["honest from web-0"]; !ok || src != victim.IP {
		t.Errorf("web-0's datagram to db-0: delivered %v, from %s", ok, src)
	}

	// The bindings go with the instances: none left, no table.
	_ = f.Close()
	for _, a := range []Attachment{victim, peer, other, spy} {
		if err := m.Detach(ctx, a.Segment, a.Instance); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.inHost(func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		tables, err := c.ListTablesOfFamily(nftables.TableFamilyBridge)
		for _, tb := range tables {
			if tb.Name == GuardTable {
				t.Errorf("table bridge %s is left after the last detach", GuardTable)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
