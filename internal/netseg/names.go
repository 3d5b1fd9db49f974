package netseg

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
)

// bridgeName is the bridge of segment: prefix+segment, or, when that is
// longer than an interface name may be, prefix + the start of segment + "-"
// + six hex digits of the segment name's SHA-256.
func bridgeName(prefix, segment string) string {
	if n := prefix + segment; len(n) <= maxIfName {
		return n
	}
	const hashLen = 6
	keep := maxIfName - len(prefix) - 1 - hashLen
	return prefix + segment[:keep] + "-" + hashHex(segment)[:hashLen]
}

// vethName is the host end of instance's veth pair: prefix followed by as
// many hex digits of the instance ID's SHA-256 as fit in an interface name.
func vethName(prefix, instance string) string {
	return prefix + hashHex(instance)[:maxIfName-len(prefix)]
}

// tapName is instance's tap device: like vethName, but hashing "tap/" +
// instance, so an instance's tap and veth names differ and a stray veth
// left by one kind never blocks the other. ('/' is not allowed in instance
// IDs, so no other instance hashes the same text.)
func tapName(prefix, instance string) string {
	return prefix + hashHex("tap/" + instance)[:maxIfName-len(prefix)]
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// macFor derives a stable, locally administered unicast MAC address from an
// IPv4 address: 0e:73 then the four address bytes. An instance that is
// rebuilt with the same address keeps its MAC, so its neighbours' ARP
// entries stay right.
func macFor(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x0e, 0x73, b[0], b[1], b[2], b[3]}
}

// validPrefix reports whether p can start interface names: 1-maxPrefixLen
// characters of a-z, 0-9, '-' and '.'.
func validPrefix(p string) bool {
	if len(p) == 0 || len(p) > maxPrefixLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		if !isLowerAlnum(p[i]) && p[i] != '-' && p[i] != '.' {
			return false
		}
	}
	return true
}

// checkSegmentName accepts DNS labels: 1-63 characters of a-z, 0-9 and '-',
// starting and ending with a letter or digit.
func checkSegmentName(name string) error {
	if len(name) == 0 || len(name) > 63 {
		return fmt.Errorf("%w: segment name %q must be 1-63 characters", ErrInvalid, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		edge := i == 0 || i == len(name)-1
		if !isLowerAlnum(c) && (c != '-' || edge) {
			return fmt.Errorf("%w: segment name %q is not a DNS label (a-z, 0-9 and '-', starting and ending with a letter or digit)", ErrInvalid, name)
		}
	}
	return nil
}

// checkInstanceID accepts the IDs runtime drivers accept: 1-63 characters
// of a-z, 0-9, '-' and '.', starting with a letter or digit. They are safe
// as file names under NetNSDir.
func checkInstanceID(id string) error {
	if len(id) == 0 || len(id) > 63 {
		return fmt.Errorf("%w: instance ID %q must be 1-63 characters", ErrInvalid, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isLowerAlnum(c) && (i == 0 || (c != '-' && c != '.')) {
			return fmt.Errorf("%w: instance ID %q must be a-z, 0-9, '-' and '.', starting with a letter or digit", ErrInvalid, id)
		}
	}
	return nil
}

func isLowerAlnum(c byte) bool {
	return ('a' <= c && c <= 'z') || ('0' <= c && c <= '9')
}
