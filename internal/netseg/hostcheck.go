package netseg

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
)

// What the Host namespace already uses, so that strata does not take it over: the
// subnets its routes and addresses cover (a segment there would capture the host's own
// traffic) and the ports its sockets listen on (a published port there would redirect
// the host's service).

// hostNet is a prefix the Host namespace routes or holds an address in, outside strata's
// own links.
type hostNet struct {
	prefix netip.Prefix
	what   string // "route 192.168.1.0/24 dev eth0", "address 192.168.1.7/24 on eth0"
}

// hostNets lists the IPv4 routes of the main table (but the default route) and the
// addresses of every link, leaving out strata's links (BridgePrefix).
func (m *Manager) hostNets(h *netlink.Handle) ([]hostNet, error) {
	links, err := linkList(h)
	if err != nil {
		return nil, err
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	ours := func(idx int) bool { return strings.HasPrefix(names[idx], m.opts.BridgePrefix) }
	var out []hostNet
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("list the host's routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil || ours(r.LinkIndex) {
			continue
		}
		p, ok := prefixOf(r.Dst.IP, r.Dst.Mask)
		if !ok || p.Bits() == 0 {
			continue
		}
		what := "route " + p.String()
		if n := names[r.LinkIndex]; n != "" {
			what += " dev " + n
		}
		out = append(out, hostNet{p, what})
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("list the host's addresses: %w", err)
	}
	for _, a := range addrs {
		if ours(a.LinkIndex) {
			continue
		}
		p, ok := prefixOf(a.IP, a.Mask)
		if !ok {
			continue
		}
		out = append(out, hostNet{p.Masked(), fmt.Sprintf("address %s on %s", p, names[a.LinkIndex])})
	}
	return out, nil
}

func prefixOf(ip []byte, mask []byte) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	ones := 0
	for _, b := range mask {
		for ; b&0x80 != 0; b <<= 1 {
			ones++
		}
	}
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// hostOverlap is what of the Host namespace subnet overlaps, or "".
func hostOverlap(nets []hostNet, subnet netip.Prefix) string {
	for _, n := range nets {
		if n.prefix.Overlaps(subnet) {
			return n.what
		}
	}
	return ""
}

// HostUse describes the route or address of the Host namespace (other than strata's
// bridges) that subnet overlaps, "route 192.168.1.0/24 dev eth0", or returns "" when
// there is none. A segment there would capture the host's own traffic. Subnets of other
// segments are EnsureSegment's to refuse.
func (m *Manager) HostUse(subnet netip.Prefix) (string, error) {
	h, err := m.opts.Host.Netlink()
	if err != nil {
		return "", err
	}
	defer h.Close()
	nets, err := m.hostNets(h)
	if err != nil {
		return "", err
	}
	return hostOverlap(nets, subnet), nil
}

// HostListener describes a socket of the Host namespace that listens on port of
// protocol ("tcp" or "udp"), IPv4 or IPv6, on any address: "sshd (pid 412) on
// 0.0.0.0:22". It returns "" when none does.
func (m *Manager) HostListener(protocol string, port uint16) (string, error) {
	var files []string
	switch protocol {
	case "tcp":
		files = []string{"tcp", "tcp6"}
	case "udp":
		files = []string{"udp", "udp6"}
	default:
		return "", fmt.Errorf("%w: protocol %q is not tcp or udp", ErrInvalid, protocol)
	}
	var found, inode string
	err := m.opts.Host.Do(func() error {
		for _, f := range files {
			// thread-self: the namespace of this thread, which Do placed in the
			// Host namespace (/proc/self/net is the main thread's).
			data, err := os.ReadFile("/proc/thread-self/net/" + f)
			if errors.Is(err, os.ErrNotExist) {
				continue // no IPv6
			}
			if err != nil {
				return err
			}
			if found, inode = listenerIn(data, protocol, port); found != "" {
				return nil
			}
		}
		return nil
	})
	if err != nil || found == "" {
		return "", err
	}
	if proc := socketOwner(inode); proc != "" {
		return proc + " on " + found, nil
	}
	return "a socket on " + found, nil
}

// listenerIn finds, in the text of /proc/net/{tcp,tcp6,udp,udp6}, a socket bound to
// port that listens (TCP state LISTEN, 0A) or is unconnected (UDP state 07), and returns
// its local address and inode.
func listenerIn(data []byte, protocol string, port uint16) (addr, inode string) {
	state := "0A"
	if protocol == "udp" {
		state = "07"
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Scan() // the header
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != state {
			continue
		}
		hexAddr, hexPort, ok := strings.Cut(f[1], ":")
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if !ok || err != nil || uint16(p) != port {
			continue
		}
		return netip.AddrPortFrom(procAddr(hexAddr), port).String(), f[9]
	}
	return "", ""
}

// procAddr decodes an address of /proc/net/tcp: 4 or 16 bytes in hex, each 32-bit word
// in host (little-endian) order.
func procAddr(s string) netip.Addr {
	b, err := hex.DecodeString(s)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.Addr{}
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	a, _ := netip.AddrFromSlice(b)
	return a.Unmap()
}

// socketOwner names the first process that holds socket inode open: "sshd (pid 412)",
// or "" when none is found (the socket belongs to the kernel, or the process went away).
func socketOwner(inode string) string {
	want := "socket:[" + inode + "]"
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		fds, _ := os.ReadDir(filepath.Join(p, "fd"))
		for _, fd := range fds {
			if l, _ := os.Readlink(filepath.Join(p, "fd", fd.Name())); l == want {
				comm, _ := os.ReadFile(filepath.Join(p, "comm"))
				return fmt.Sprintf("%s (pid %s)", strings.TrimSpace(string(comm)), filepath.Base(p))
			}
		}
	}
	return ""
}
