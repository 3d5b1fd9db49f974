package dns

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// ResolvConf is the /etc/resolv.conf of an instance on segment: the
// segment's server as the only nameserver, and the segment as the search
// domain, so that "NAME" (tried as "NAME.SEGMENT" first) and
// "NAME.SEGMENT" both resolve. With ndots:1, a name with a dot
// ("web.back", "example.com") is tried as it is first, without a detour
// through the search domain.
func ResolvConf(gateway netip.Addr, segment string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by strata: the DNS server of segment %s, on its gateway.\n", segment)
	fmt.Fprintf(&b, "nameserver %s\n", gateway.Unmap())
	fmt.Fprintf(&b, "search %s\n", segment)
	b.WriteString("options ndots:1\n")
	return b.Bytes()
}

// maxNameservers is how many nameserver lines the C library's resolver
// reads; later ones are ignored by the host, so here too.
const maxNameservers = 3

// HostUpstreams reads the nameserver lines of a resolv.conf file (such as
// the host's /etc/resolv.conf) and returns them as upstreams on port 53,
// in file order. Loopback addresses (a local caching stub such as
// 127.0.0.53) are left out when the file lists any other nameserver, and
// kept when they are all there is: the server forwards from the Host
// namespace, where such a stub answers. A file without nameserver lines
// means 127.0.0.1, as it does for the C library.
func HostUpstreams(path string) ([]netip.AddrPort, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read upstream resolvers: %w", err)
	}
	return parseResolvConf(b), nil
}

// parseResolvConf is HostUpstreams on the file's content. Lines it does not
// understand are ignored, as the C library ignores them.
func parseResolvConf(b []byte) []netip.AddrPort {
	var all, remote []netip.AddrPort
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() && len(all) < maxNameservers {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil || a.IsUnspecified() {
			continue
		}
		ap := netip.AddrPortFrom(a.Unmap(), Port)
		all = append(all, ap)
		if !ap.Addr().IsLoopback() {
			remote = append(remote, ap)
		}
	}
	switch {
	case len(remote) > 0:
		return remote
	case len(all) > 0:
		return all
	}
	return []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), Port)}
}
