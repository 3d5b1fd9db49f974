package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrInvalid marks a Policy that cannot be compiled; the message names the
// entry (segments[2].allow[0].ports[1], publish[3], ...) and what is wrong.
var ErrInvalid = errors.New("invalid network policy")

// DefaultPrefix starts the name of every interface strata makes (bridges,
// host veths, taps), as netseg's DefaultBridgePrefix does.
const DefaultPrefix = "st-"

// Policy is what strata's table enforces: the segments on this host and the
// ports published from it.
type Policy struct {
	// Prefix starts the name of every interface strata makes; traffic
	// through an interface whose name starts with it is strata's.
	// Default DefaultPrefix.
	Prefix string

	Segments []Segment
	Publish  []Publish
}

// Segment is one zone: a bridge and the IPv4 subnet behind it.
type Segment struct {
	// Name is the segment's name, a DNS label; Allow.From refers to it.
	Name string
	// Bridge is the segment's bridge interface; it starts with the Prefix.
	Bridge string
	// Subnet is the segment's IPv4 subnet.
	Subnet netip.Prefix
	// Gateway is the bridge's own address in Subnet. Instances' DNS server
	// listens here, on UDP and TCP port 53.
	Gateway netip.Addr
	// Egress lets the segment reach beyond the host, masqueraded to the
	// address of the interface it leaves by. Without it, the segment's
	// packets never leave the host.
	Egress bool
	// Allow lists the flows admitted INTO this segment from others.
	Allow []Allow
}

// Allow admits connections from the instances of segment From to the
// instances of the segment that holds it.
//
// A From that names no segment of the Policy is not an error: the rule
// admits nothing until a segment of that name exists, so a segment may name
// its peers before they are created.
type Allow struct {
	// From is the name of the segment the connections come from.
	From string
	// Ports are the admitted destination ports. None admits every port of
	// every protocol (ICMP included).
	Ports []Port
}

// Port is a destination port of one protocol.
type Port struct {
	Port     uint16
	Protocol string // "tcp" or "udp"
}

// Publish forwards a port of the host to instances of a segment.
type Publish struct {
	// HostPort and Protocol ("tcp" or "udp") are where the host listens:
	// on every local address except the 127.0.0.0/8 loopback ones.
	HostPort uint16
	Protocol string
	// Targets are the running instances that serve the port, in the
	// Segment's subnet. New connections go to them in turn. With none, the
	// port is not forwarded (the host answers it, or refuses it).
	Targets []netip.AddrPort
	// Segment is the name of the segment that holds the Targets. While no
	// segment of that name is in the Policy, the port is not forwarded.
	Segment string
}

// protocols maps the protocol names of Port and Publish to IP protocol
// numbers.
var protocols = map[string]uint8{"tcp": 6, "udp": 17}

// normalized returns p with its defaults filled in, after checking every
// entry; the error wraps ErrInvalid and names the first bad entry.
func (p Policy) normalized() (Policy, error) {
	if p.Prefix == "" {
		p.Prefix = DefaultPrefix
	}
	if err := checkPrefix(p.Prefix); err != nil {
		return p, err
	}
	byName := make(map[string]int, len(p.Segments))
	byBridge := make(map[string]int, len(p.Segments))
	for i, s := range p.Segments {
		where := fmt.Sprintf("segments[%d] (%q)", i, s.Name)
		if err := checkSegment(s, p.Prefix); err != nil {
			return p, fmt.Errorf("%w: %s: %w", ErrInvalid, where, err)
		}
		if j, dup := byName[s.Name]; dup {
			return p, fmt.Errorf("%w: %s: name already used by segments[%d]", ErrInvalid, where, j)
		}
		if j, dup := byBridge[s.Bridge]; dup {
			return p, fmt.Errorf("%w: %s: bridge %q already used by segments[%d]", ErrInvalid, where, s.Bridge, j)
		}
		byName[s.Name], byBridge[s.Bridge] = i, i
	}
	published := make(map[Port]int, len(p.Publish))
	for i, pub := range p.Publish {
		where := fmt.Sprintf("publish[%d] (%s/%d)", i, pub.Protocol, pub.HostPort)
		subnet := netip.Prefix{} // any target will do while the segment is unknown
		if seg, ok := byName[pub.Segment]; ok {
			subnet = p.Segments[seg].Subnet
		}
		if err := checkPublish(pub, subnet); err != nil {
			return p, fmt.Errorf("%w: %s: %w", ErrInvalid, where, err)
		}
		key := Port{pub.HostPort, pub.Protocol}
		if j, dup := published[key]; dup {
			return p, fmt.Errorf("%w: %s: host port already published by publish[%d]; each host port and protocol is published once", ErrInvalid, where, j)
		}
		published[key] = i
	}
	return p, nil
}

func checkPrefix(prefix string) error {
	if len(prefix) > maxIfName-1 {
		return fmt.Errorf("%w: interface prefix %q is longer than %d characters", ErrInvalid, prefix, maxIfName-1)
	}
	return nil
}

// maxIfName is the longest interface name Linux accepts (IFNAMSIZ - 1).
const maxIfName = 15

func checkSegment(s Segment, prefix string) error {
	if err := checkLabel(s.Name); err != nil {
		return err
	}
	switch {
	case !strings.HasPrefix(s.Bridge, prefix) || len(s.Bridge) == len(prefix):
		return fmt.Errorf("bridge %q does not start with the interface prefix %q followed by a name", s.Bridge, prefix)
	case len(s.Bridge) > maxIfName:
		return fmt.Errorf("bridge %q is longer than the %d characters of an interface name", s.Bridge, maxIfName)
	case !s.Subnet.IsValid() || !s.Subnet.Addr().Is4():
		return fmt.Errorf("subnet %s is not an IPv4 prefix", s.Subnet)
	case !s.Gateway.Is4() || !s.Subnet.Contains(s.Gateway):
		return fmt.Errorf("gateway %s is not an IPv4 address in subnet %s", s.Gateway, s.Subnet)
	}
	for i, a := range s.Allow {
		if a.From == "" {
			return fmt.Errorf("allow[%d]: from names no segment", i)
		}
		for j, port := range a.Ports {
			if err := checkPort(port.Port, port.Protocol); err != nil {
				return fmt.Errorf("allow[%d] (from %q): ports[%d]: %w", i, a.From, j, err)
			}
		}
	}
	return nil
}

func checkPublish(pub Publish, subnet netip.Prefix) error {
	if err := checkPort(pub.HostPort, pub.Protocol); err != nil {
		return err
	}
	seen := make(map[netip.AddrPort]bool, len(pub.Targets))
	for i, t := range pub.Targets {
		switch {
		case !t.Addr().Is4() || t.Port() == 0:
			return fmt.Errorf("targets[%d]: %s is not an IPv4 address and a port", i, t)
		case subnet.IsValid() && !subnet.Contains(t.Addr()):
			return fmt.Errorf("targets[%d]: %s is outside segment %q's subnet %s", i, t, pub.Segment, subnet)
		case seen[t]:
			return fmt.Errorf("targets[%d]: %s is listed twice", i, t)
		}
		seen[t] = true
	}
	return nil
}

func checkPort(port uint16, protocol string) error {
	if _, ok := protocols[protocol]; !ok {
		return fmt.Errorf("protocol %q is not \"tcp\" or \"udp\"", protocol)
	}
	if port == 0 {
		return fmt.Errorf("port 0 is not a port")
	}
	return nil
}

// checkLabel accepts DNS labels: 1-63 characters of a-z, 0-9 and '-',
// starting and ending with a letter or digit.
func checkLabel(name string) error {
	if len(name) == 0 || len(name) > 63 {
		return fmt.Errorf("segment name must be 1-63 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := ('a' <= c && c <= 'z') || ('0' <= c && c <= '9')
		if !alnum && (c != '-' || i == 0 || i == len(name)-1) {
			return fmt.Errorf("segment name is not a DNS label (a-z, 0-9 and '-', starting and ending with a letter or digit)")
		}
	}
	return nil
}
