package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// model is what a Policy means, written straight from the package
// documentation without looking at any rule. The property tests hold the
// evaluator's verdicts on the compiled rules against it.
type model struct {
	p        Policy
	byName   map[string]*Segment
	byBridge map[string]*Segment
}

func newModel(p Policy) model {
	if p.Prefix == "" {
		p.Prefix = DefaultPrefix
	}
	m := model{p: p, byName: make(map[string]*Segment), byBridge: make(map[string]*Segment)}
	for i := range p.Segments {
		s := &p.Segments[i]
		m.byName[s.Name], m.byBridge[s.Bridge] = s, s
	}
	return m
}

// want is the model's verdict: the outcome and the case of the policy that
// decided it, for coverage.
type want struct {
	drop    bool
	targets []netip.AddrPort // destination NAT to one of these
	masq    bool
	why     string
}

func (w want) String() string {
	switch {
	case w.drop:
		return "drop (" + w.why + ")"
	case w.targets != nil:
		return fmt.Sprintf("dnat to one of %v (%s)", w.targets, w.why)
	case w.masq:
		return "masquerade (" + w.why + ")"
	}
	return "accept (" + w.why + ")"
}

// matches reports whether the evaluator's outcome is what the model wants.
func (w want) matches(o outcome) bool {
	if o.drop != w.drop || o.masq != w.masq || o.dnat.IsValid() != (w.targets != nil) {
		return false
	}
	return w.targets == nil || slices.Contains(w.targets, o.dnat)
}

func (m model) strata(ifname string) bool { return strings.HasPrefix(ifname, m.p.Prefix) }

func (m model) decide(p packet) want {
	switch p.hook {
	case hookForward:
		return m.forward(p)
	case hookInput:
		return m.input(p)
	case hookPrerouting, hookOutput:
		return m.dnat(p)
	case hookPostrouting:
		return m.postrouting(p)
	}
	panic("unknown hook")
}

func replies(p packet) bool    { return p.ct == ctEstablished || p.ct == ctRelated }
func tracked(p packet) bool    { return p.ct != ctInvalid && p.ct != ctUntracked }
func accepted(why string) want { return want{why: why} }
func dropped(why string) want  { return want{drop: true, why: why} }

func (m model) forward(p packet) want {
	src, dst := m.byBridge[p.iif], m.byBridge[p.oif]
	fromStrata, toStrata := m.strata(p.iif), m.strata(p.oif)
	switch {
	case replies(p):
		return accepted("forward: reply")
	case src != nil && src == dst:
		return accepted("forward: same segment")
	case p.ct == ctInvalid && (fromStrata || toStrata):
		return dropped("forward: invalid")
	case tracked(p) && p.dnat && toStrata:
		return accepted("forward: published port")
	}
	portsNamed := false
	if src != nil && dst != nil {
		for _, a := range dst.Allow {
			if a.From != src.Name {
				continue
			}
			if len(a.Ports) == 0 {
				return accepted("forward: allowed, every port")
			}
			portsNamed = true
			for _, port := range a.Ports {
				if protocols[port.Protocol] == p.proto && port.Port == p.dport {
					return accepted("forward: allowed port")
				}
			}
		}
	}
	if src != nil && src.Egress && !toStrata {
		return accepted("forward: egress")
	}
	switch {
	case portsNamed:
		return dropped("forward: port not allowed")
	case src != nil && dst != nil:
		return dropped("forward: pair not allowed")
	case src != nil && !toStrata:
		return dropped("forward: egress denied")
	case fromStrata || toStrata:
		return dropped("forward: other strata interface")
	}
	return accepted("forward: not strata's")
}

func (m model) input(p packet) want {
	if replies(p) {
		return accepted("input: reply")
	}
	if src := m.byBridge[p.iif]; src != nil && !p.v6 && p.daddr == src.Gateway &&
		(p.proto == unix.IPPROTO_TCP || p.proto == unix.IPPROTO_UDP) && p.dport == dnsPort {
		return accepted("input: DNS")
	}
	if m.strata(p.iif) {
		return dropped("input: from a segment")
	}
	return accepted("input: not strata's")
}

func (m model) dnat(p packet) want {
	name := hookNames[p.hook]
	if p.v6 || !p.local {
		return accepted(name + ": not to the host")
	}
	for _, pub := range m.p.Publish {
		if protocols[pub.Protocol] != p.proto || pub.HostPort != p.dport || len(pub.Targets) == 0 || m.byName[pub.Segment] == nil {
			continue
		}
		if p.hook == hookOutput && p.daddr.As4()[0] == 127 {
			return accepted(name + ": published port on loopback")
		}
		return want{targets: pub.Targets, why: name + ": published port"}
	}
	return accepted(name + ": not published")
}

func (m model) postrouting(p packet) want {
	if !p.v6 && p.oif != "" && !m.strata(p.oif) {
		for _, s := range m.p.Segments {
			if s.Egress && s.Subnet.Contains(p.saddr) {
				return want{masq: true, why: "postrouting: egress"}
			}
		}
	}
	if dst := m.byBridge[p.oif]; tracked(p) && p.dnat && !p.v6 && dst != nil && dst.Subnet.Contains(p.saddr) {
		return want{masq: true, why: "postrouting: published port from its own segment"}
	}
	return accepted("postrouting: no translation")
}

// Random policies and packets.

// portPool is where random allows and publishes take their ports from, so
// packets hit them often.
var portPool = []uint16{22, 53, 80, 443, 5432, 7007, 8080}

func randProto(rng *rand.Rand) string { return []string{"tcp", "udp"}[rng.IntN(2)] }

// randPolicy makes 3-30 segments with random allows (some from segments
// that do not exist), egress and publishes. Bridge names include some that
// are prefixes of others ("st-s1", "st-s10"), subnets some /25s and
// neighbouring /24s.
func randPolicy(rng *rand.Rand) Policy {
	n := 3 + rng.IntN(28)
	var p Policy
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		if rng.IntN(4) == 0 {
			name += "-" + strings.Repeat("x", rng.IntN(6)) + "z"
		}
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(i), 0}), 24)
		if rng.IntN(5) == 0 {
			subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(i), byte(128 * rng.IntN(2))}), 25)
		}
		p.Segments = append(p.Segments, Segment{
			Name:    name,
			Bridge:  DefaultPrefix + name,
			Subnet:  subnet,
			Gateway: subnet.Addr().Next(),
			Egress:  rng.IntN(2) == 0,
		})
	}
	for i := range p.Segments {
		for range rng.IntN(5) {
			from := "ghost"
			if rng.IntN(6) > 0 {
				from = p.Segments[rng.IntN(n)].Name
			}
			a := Allow{From: from}
			if rng.IntN(3) > 0 {
				for range 1 + rng.IntN(3) {
					a.Ports = append(a.Ports, Port{portPool[rng.IntN(len(portPool))], randProto(rng)})
				}
			}
			p.Segments[i].Allow = append(p.Segments[i].Allow, a)
		}
	}
	used := make(map[Port]bool)
	for range rng.IntN(5) {
		port := Port{portPool[rng.IntN(len(portPool))], randProto(rng)}
		if used[port] {
			continue
		}
		used[port] = true
		s := p.Segments[rng.IntN(n)]
		pub := Publish{HostPort: port.Port, Protocol: port.Protocol, Segment: s.Name}
		for range rng.IntN(4) {
			t := netip.AddrPortFrom(randAddrIn(rng, s.Subnet), portPool[rng.IntN(len(portPool))])
			if !slices.Contains(pub.Targets, t) {
				pub.Targets = append(pub.Targets, t)
			}
		}
		if rng.IntN(8) == 0 {
			pub.Segment = "ghost" // not forwarded until it exists
		}
		p.Publish = append(p.Publish, pub)
	}
	return p
}

func randAddrIn(rng *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := rng.Uint32N(1 << (32 - p.Bits()))
	for i := 3; i >= 0; i-- {
		b[i] |= byte(host)
		host >>= 8
	}
	return netip.AddrFrom4(b)
}

// outside is an address beyond the host; hostAddr one of the host's own.
var (
	outside  = netip.MustParseAddr("10.99.0.7")
	hostAddr = netip.MustParseAddr("10.98.0.1")
	loopback = netip.MustParseAddr("127.0.0.1")
	outside6 = netip.MustParseAddr("fd00::7")
)

// otherIfnames are interfaces that are not bridges of the policy: the
// host's own, strata's veths and taps, a stale bridge, and names that
// resemble the prefix without having it.
var otherIfnames = []string{"eth0", "lo", "docker0", "st", "st_x", "sT-a", "st-0123456789ab", "st-gone"}

// randPacket makes a packet at a random hook, mostly between the
// policy's interfaces and addresses, often on the ports it names.
func randPacket(rng *rand.Rand, p Policy) packet {
	seg := func() Segment { return p.Segments[rng.IntN(len(p.Segments))] }
	ifname := func() string {
		if rng.IntN(4) == 0 {
			return otherIfnames[rng.IntN(len(otherIfnames))]
		}
		return seg().Bridge
	}
	addr := func() netip.Addr {
		switch rng.IntN(6) {
		case 0:
			return outside
		case 1:
			return hostAddr
		case 2:
			return loopback
		case 3:
			return seg().Gateway
		}
		return randAddrIn(rng, seg().Subnet)
	}
	pk := packet{
		hook:  []nftables.ChainHook{hookPrerouting, hookInput, hookForward, hookOutput, hookPostrouting}[rng.IntN(5)],
		saddr: addr(),
		daddr: addr(),
		proto: []uint8{unix.IPPROTO_TCP, unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDP, unix.IPPROTO_ICMP, unix.IPPROTO_GRE}[rng.IntN(6)],
		sport: uint16(1024 + rng.IntN(60000)),
		dport: portPool[rng.IntN(len(portPool))],
		ct:    []ctState{ctNew, ctNew, ctNew, ctNew, ctEstablished, ctEstablished, ctRelated, ctInvalid, ctInvalid, ctUntracked}[rng.IntN(10)],
		dnat:  rng.IntN(5) == 0,
		local: rng.IntN(3) == 0,
	}
	if rng.IntN(10) == 0 {
		pk.dport = uint16(rng.IntN(65536))
	}
	if rng.IntN(12) == 0 {
		pk.v6, pk.saddr, pk.daddr = true, outside6, outside6
	}
	// The interfaces each hook knows.
	switch pk.hook {
	case hookPrerouting, hookInput:
		pk.iif = ifname()
	case hookForward:
		pk.iif, pk.oif = ifname(), ifname()
		if rng.IntN(4) == 0 { // within one segment, as bridged or hairpinned
			pk.oif = pk.iif
		}
	case hookOutput:
		pk.oif = ifname()
	case hookPostrouting:
		pk.oif = ifname()
		if rng.IntN(2) == 0 { // forwarded, rather than from the host
			pk.iif = ifname()
			if rng.IntN(3) == 0 {
				pk.iif = pk.oif
			}
		}
	}
	// Aim some packets at what the policy names.
	switch rng.IntN(4) {
	case 0: // a segment's DNS server
		if pk.hook == hookInput {
			s := seg()
			pk.iif, pk.daddr, pk.dport = s.Bridge, s.Gateway, dnsPort
		}
	case 1: // a flow some segment allows
		s := seg()
		if len(s.Allow) > 0 && pk.hook == hookForward {
			a := s.Allow[rng.IntN(len(s.Allow))]
			if from, ok := newModel(p).byName[a.From]; ok {
				pk.iif, pk.oif = from.Bridge, s.Bridge
			}
			if len(a.Ports) > 0 && rng.IntN(3) > 0 {
				port := a.Ports[rng.IntN(len(a.Ports))]
				pk.proto, pk.dport = protocols[port.Protocol], port.Port
			}
		}
	case 2: // a published port
		if len(p.Publish) > 0 {
			pub := p.Publish[rng.IntN(len(p.Publish))]
			pk.proto, pk.dport = protocols[pub.Protocol], pub.HostPort
		}
	}
	return pk
}
