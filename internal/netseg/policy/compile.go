package policy

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Table is the name of strata's nftables table, of family inet. strata
// changes nothing else.
const Table = "strata"

// Chain names.
const (
	chainForward     = "forward"
	chainInput       = "input"
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
)

// Set names; each published port adds a map "publish_<protocol>_<port>".
const (
	setSame       = "same_segment"
	setAllowAll   = "allow_all"
	setAllowPorts = "allow_ports"
	setEgress     = "egress"
	setEgressNets = "egress_subnets"
	setSubnets    = "segment_subnets"
	setDNS        = "dns"
)

// Set key types.
var (
	typeIfnamePair = nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIFName)
	typeFlow       = nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIFName, nftables.TypeInetProto, nftables.TypeInetService)
	typeDNS        = nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	typeSubnet     = nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIPAddr)
	typeTarget     = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
)

// dnsPort is where instances' DNS server listens on the gateway.
const dnsPort = 53

// Compile turns p into the ruleset of table inet strata. It is a pure
// function: it reads nothing but p, and equal policies compile to rulesets
// with equal Digests whatever the order of their segments, allows,
// publishes and targets. An error wraps ErrInvalid and names the first bad
// entry.
func Compile(p Policy) (*Ruleset, error) {
	p, err := p.normalized()
	if err != nil {
		return nil, err
	}
	b := newBuilder()
	sets := b.sets(p)
	b.forward(p.Prefix, sets)
	b.input(p.Prefix, sets)
	pre, out := b.natChain(chainPrerouting, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest),
		b.natChain(chainOutput, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	for _, pub := range sortedPublishes(p.Publish) {
		if slices.ContainsFunc(p.Segments, func(s Segment) bool { return s.Name == pub.Segment }) {
			b.publish(pre, out, pub)
		}
	}
	b.postrouting(p.Prefix, sets)
	if err := b.r.seal(); err != nil {
		return nil, err
	}
	return b.r, nil
}

// builder assembles a Ruleset, numbering sets in the order they are made.
type builder struct {
	r *Ruleset
}

func newBuilder() *builder {
	return &builder{r: &Ruleset{table: &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}}}
}

// ruleSets are the sets the rules look packets up in.
type ruleSets struct {
	same, allowAll, allowPorts, egress, egressNets, subnets, dns *nftables.Set
}

func (b *builder) addSet(s *nftables.Set, elems []nftables.SetElement) *nftables.Set {
	s.Table = b.r.table
	s.ID = uint32(len(b.r.sets) + 1) // IDs name sets within one batch
	slices.SortFunc(elems, func(x, y nftables.SetElement) int { return slices.Compare(x.Key, y.Key) })
	b.r.sets = append(b.r.sets, &set{s: s, elems: elems})
	return s
}

// sets makes every set but the publish maps.
func (b *builder) sets(p Policy) ruleSets {
	var e segmentElems
	for _, s := range p.Segments {
		e.add(s)
	}
	allowAll, allowPorts := flows(p)
	return ruleSets{
		same:       b.addSet(&nftables.Set{Name: setSame, KeyType: typeIfnamePair, Concatenation: true}, e.same),
		allowAll:   b.addSet(&nftables.Set{Name: setAllowAll, KeyType: typeIfnamePair, Concatenation: true}, allowAll),
		allowPorts: b.addSet(&nftables.Set{Name: setAllowPorts, KeyType: typeFlow, Concatenation: true}, allowPorts),
		// Interface names are strings, which nft lists in host byte order.
		egress:     b.addSet(&nftables.Set{Name: setEgress, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian}, e.egress),
		egressNets: b.addSet(&nftables.Set{Name: setEgressNets, KeyType: nftables.TypeIPAddr, Interval: true, KeyByteOrder: binaryutil.BigEndian}, intervals(e.egressNets)),
		subnets:    b.addSet(&nftables.Set{Name: setSubnets, KeyType: typeSubnet, Concatenation: true, Interval: true}, e.subnets),
		dns:        b.addSet(&nftables.Set{Name: setDNS, KeyType: typeDNS, Concatenation: true}, e.dns),
	}
}

// segmentElems are the elements that each segment adds to the sets.
type segmentElems struct {
	same, subnets, dns, egress []nftables.SetElement
	egressNets                 []netip.Prefix
}

func (e *segmentElems) add(s Segment) {
	br := ifnameKey(s.Bridge)
	e.same = append(e.same, nftables.SetElement{Key: concat(br, br)})
	first, last := addrRange(s.Subnet)
	e.subnets = append(e.subnets, nftables.SetElement{
		Key:    concat(br, binary.BigEndian.AppendUint32(nil, first)),
		KeyEnd: concat(br, binary.BigEndian.AppendUint32(nil, last)),
	})
	for _, proto := range []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
		e.dns = append(e.dns, nftables.SetElement{Key: concat(br, addrKey(s.Gateway), protoKey(proto), portKey(dnsPort))})
	}
	if s.Egress {
		e.egress = append(e.egress, nftables.SetElement{Key: br})
		e.egressNets = append(e.egressNets, s.Subnet)
	}
}

// flows are the elements of allow_all and allow_ports, without
// duplicates. Allows from a segment that does not exist, or from the
// segment itself, add nothing; nor do the ports of a pair that is admitted
// on every port.
func flows(p Policy) (all, ports []nftables.SetElement) {
	bridge := make(map[string]string, len(p.Segments))
	for _, s := range p.Segments {
		bridge[s.Name] = s.Bridge
	}
	// pairs maps "from . to" keys to whether every port is admitted.
	pairs := make(map[string]bool)
	for _, s := range p.Segments {
		for _, a := range s.Allow {
			if from, ok := bridge[a.From]; ok && a.From != s.Name {
				key := string(concat(ifnameKey(from), ifnameKey(s.Bridge)))
				pairs[key] = pairs[key] || len(a.Ports) == 0
			}
		}
	}
	seen := make(map[string]bool)
	for _, s := range p.Segments {
		for _, a := range s.Allow {
			from, ok := bridge[a.From]
			if !ok || a.From == s.Name {
				continue
			}
			pair := concat(ifnameKey(from), ifnameKey(s.Bridge))
			if pairs[string(pair)] {
				if !seen[string(pair)] {
					seen[string(pair)] = true
					all = append(all, nftables.SetElement{Key: pair})
				}
				continue
			}
			for _, port := range a.Ports {
				key := concat(pair, protoKey(protocols[port.Protocol]), portKey(port.Port))
				if !seen[string(key)] {
					seen[string(key)] = true
					ports = append(ports, nftables.SetElement{Key: key})
				}
			}
		}
	}
	return all, ports
}

// intervals are the elements of an interval set holding the addresses of
// prefixes: overlapping and adjacent ranges merged, each a start element
// and an end element one past its last address.
func intervals(prefixes []netip.Prefix) []nftables.SetElement {
	type span struct{ first, last uint64 }
	spans := make([]span, 0, len(prefixes))
	for _, p := range prefixes {
		first, last := addrRange(p)
		spans = append(spans, span{uint64(first), uint64(last)})
	}
	slices.SortFunc(spans, func(x, y span) int { return cmp.Compare(x.first, y.first) })
	var merged []span
	for _, s := range spans {
		if n := len(merged); n > 0 && s.first <= merged[n-1].last+1 {
			merged[n-1].last = max(merged[n-1].last, s.last)
			continue
		}
		merged = append(merged, s)
	}
	var elems []nftables.SetElement
	for _, s := range merged {
		elems = append(elems, nftables.SetElement{Key: binary.BigEndian.AppendUint32(nil, uint32(s.first))})
		if s.last < 1<<32-1 {
			elems = append(elems, nftables.SetElement{Key: binary.BigEndian.AppendUint32(nil, uint32(s.last+1)), IntervalEnd: true})
		}
	}
	return elems
}

// addrRange is the first and last address of an IPv4 prefix.
func addrRange(p netip.Prefix) (first, last uint32) {
	first = binary.BigEndian.Uint32(addrKey(p.Masked().Addr()))
	return first, first | uint32(1<<(32-p.Bits())-1)
}

// chain adds a base chain whose policy is accept.
func (b *builder) chain(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority, typ nftables.ChainType) *chain {
	policy := nftables.ChainPolicyAccept
	c := &chain{c: &nftables.Chain{Name: name, Table: b.r.table, Hooknum: hook, Priority: prio, Type: typ, Policy: &policy}}
	b.r.chains = append(b.r.chains, c)
	return c
}

func (b *builder) natChain(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *chain {
	return b.chain(name, hook, prio, nftables.ChainTypeNAT)
}

// add appends a rule made of parts, in order, with a comment.
func (c *chain) add(text string, parts ...[]expr.Any) {
	var exprs []expr.Any
	for _, p := range parts {
		exprs = append(exprs, p...)
	}
	c.rules = append(c.rules, &nftables.Rule{Table: c.c.Table, Chain: c.c, Exprs: exprs, UserData: comment(text)})
}

// one wraps single expressions for chain.add.
func one(e ...expr.Any) []expr.Any { return e }

// Forward-chain comments; the first also carries the Digest.
const repliesComment = "replies"

func (b *builder) forward(prefix string, s ruleSets) {
	c := b.chain(chainForward, nftables.ChainHookForward, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	pair := one(loadIfname(expr.MetaKeyIIFNAME, 0), loadIfname(expr.MetaKeyOIFNAME, ifnameRegs))
	c.add(repliesComment, ctStateIn(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), one(accept()))
	c.add("within a segment", pair, one(lookup(s.same, 0), accept()))
	c.add("invalid from a segment", ctStateIn(expr.CtStateBitINVALID), hasPrefix(expr.MetaKeyIIFNAME, prefix, false), drop())
	c.add("invalid to a segment", ctStateIn(expr.CtStateBitINVALID), hasPrefix(expr.MetaKeyOIFNAME, prefix, false), drop())
	c.add("published ports", ctDNAT(), hasPrefix(expr.MetaKeyOIFNAME, prefix, false), one(accept()))
	c.add("allowed flows, every port", pair, one(lookup(s.allowAll, 0), accept()))
	c.add("allowed flows, by port", pair, one(l4proto(2*ifnameRegs), dport(2*ifnameRegs+1), lookup(s.allowPorts, 0), accept()))
	c.add("egress", one(loadIfname(expr.MetaKeyIIFNAME, 0), lookup(s.egress, 0)), hasPrefix(expr.MetaKeyOIFNAME, prefix, true), one(accept()))
	c.add("from a segment", hasPrefix(expr.MetaKeyIIFNAME, prefix, false), drop())
	c.add("to a segment", hasPrefix(expr.MetaKeyOIFNAME, prefix, false), drop())
}

func (b *builder) input(prefix string, s ruleSets) {
	c := b.chain(chainInput, nftables.ChainHookInput, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	c.add(repliesComment, ctStateIn(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), one(accept()))
	c.add("DNS on the segment's gateway", ipv4Only(), one(
		loadIfname(expr.MetaKeyIIFNAME, 0),
		ipv4Field(ipv4Daddr, ifnameRegs),
		l4proto(ifnameRegs+1),
		dport(ifnameRegs+2),
		lookup(s.dns, 0),
		accept(),
	))
	c.add("from a segment to the host", hasPrefix(expr.MetaKeyIIFNAME, prefix, false), drop())
}

// publish adds the DNAT rules of one published port to the prerouting
// (packets from elsewhere) and output (packets from the host itself)
// chains. Both send new connections to the targets in turn: numgen counts
// modulo the number of targets and a map turns the count into a target.
func (b *builder) publish(pre, out *chain, pub Publish) {
	if len(pub.Targets) == 0 {
		return
	}
	targets := slices.Clone(pub.Targets)
	slices.SortFunc(targets, func(x, y netip.AddrPort) int { return x.Compare(y) })
	elems := make([]nftables.SetElement, len(targets))
	for i, t := range targets {
		elems[i] = nftables.SetElement{
			Key: binaryutil.NativeEndian.PutUint32(uint32(i)),
			Val: concat(addrKey(t.Addr()), portKey(t.Port())),
		}
	}
	m := b.addSet(&nftables.Set{
		Name:         fmt.Sprintf("publish_%s_%d", pub.Protocol, pub.HostPort),
		IsMap:        true,
		KeyType:      nftables.TypeInteger,
		DataType:     typeTarget,
		KeyByteOrder: binaryutil.NativeEndian,
	}, elems)
	dnat := one(
		&expr.Numgen{Register: reg(0), Modulus: uint32(len(targets)), Type: unix.NFT_NG_INCREMENTAL},
		lookupMap(m, 0),
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg(0), RegProtoMin: reg(1)},
	)
	match := protoPort(protocols[pub.Protocol], pub.HostPort)
	text := fmt.Sprintf("published %s/%d", pub.Protocol, pub.HostPort)
	pre.add(text, ipv4Only(), match, daddrLocal(), dnat)
	out.add(text, ipv4Only(), notLoopback(), match, daddrLocal(), dnat)
}

func (b *builder) postrouting(prefix string, s ruleSets) {
	c := b.natChain(chainPostrouting, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	c.add("egress", ipv4Only(), hasPrefix(expr.MetaKeyOIFNAME, prefix, true),
		one(ipv4Field(ipv4Saddr, 0), lookup(s.egressNets, 0), &expr.Masq{}))
	c.add("published port reached from its own segment", ctDNAT(), ipv4Only(),
		one(loadIfname(expr.MetaKeyOIFNAME, 0), ipv4Field(ipv4Saddr, ifnameRegs), lookup(s.subnets, 0), &expr.Masq{}))
}

func sortedPublishes(pubs []Publish) []Publish {
	pubs = slices.Clone(pubs)
	slices.SortFunc(pubs, func(x, y Publish) int {
		return cmp.Or(cmp.Compare(x.Protocol, y.Protocol), cmp.Compare(x.HostPort, y.HostPort))
	})
	return pubs
}
