package policy

import (
	"bytes"
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

// This file is an interpreter for the nftables expressions strata's
// rulesets use. It runs a packet through the chains of a Ruleset as the
// kernel would, reading only the chains, rules, expressions, sets and
// elements, never the Policy, so comparing its verdicts with what the
// Policy means checks the compiler. It runs equally on a Ruleset read back
// from the kernel (Current), which checks the round trip through netlink.
//
// Anything it does not know (an expression kind, a meta key, a verdict
// other than accept and drop, a NAT in the wrong chain) is an error rather
// than a guess.

// hooks in the order a packet can meet them.
var (
	hookPrerouting  = *nftables.ChainHookPrerouting
	hookInput       = *nftables.ChainHookInput
	hookForward     = *nftables.ChainHookForward
	hookOutput      = *nftables.ChainHookOutput
	hookPostrouting = *nftables.ChainHookPostrouting
)

var hookNames = map[nftables.ChainHook]string{
	hookPrerouting: "prerouting", hookInput: "input", hookForward: "forward",
	hookOutput: "output", hookPostrouting: "postrouting",
}

// ctState is a packet's conntrack state.
type ctState int

const (
	ctNew ctState = iota
	ctEstablished
	ctRelated
	ctInvalid
	ctUntracked
)

func (s ctState) String() string {
	return [...]string{"new", "established", "related", "invalid", "untracked"}[s]
}

// packet is what the rules can see of a packet at one hook.
type packet struct {
	hook     nftables.ChainHook
	iif, oif string // "" where the hook has no such interface
	v6       bool
	saddr    netip.Addr
	daddr    netip.Addr
	proto    uint8
	sport    uint16
	dport    uint16
	ct       ctState
	dnat     bool // conntrack status has IPS_DST_NAT
	local    bool // daddr is an address of the host (the fib result)
}

func (p packet) String() string {
	fam := "ip"
	if p.v6 {
		fam = "ip6"
	}
	return fmt.Sprintf("%s iif=%q oif=%q %s %s -> %s proto=%d dport=%d ct=%s dnat=%v local=%v",
		hookNames[p.hook], p.iif, p.oif, fam, p.saddr, p.daddr, p.proto, p.dport, p.ct, p.dnat, p.local)
}

// network is the packet's IPv4 or IPv6 header.
func (p packet) network() []byte {
	if p.v6 {
		h := make([]byte, 40)
		h[0] = 6 << 4
		h[6] = p.proto
		h[7] = 64
		s, d := p.saddr.As16(), p.daddr.As16()
		copy(h[8:], s[:])
		copy(h[24:], d[:])
		return h
	}
	h := make([]byte, 20)
	h[0] = 4<<4 | 5
	h[8] = 64
	h[9] = p.proto
	s, d := p.saddr.As4(), p.daddr.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	return h
}

// transport is the packet's transport header. Bytes 2-3 hold dport
// whatever the protocol (for ICMP they are the checksum), so a rule that
// matches a port without the protocol would be caught.
func (p packet) transport() []byte {
	n := 8
	if p.proto == unix.IPPROTO_TCP {
		n = 20
	}
	h := make([]byte, n)
	binary.BigEndian.PutUint16(h[0:], p.sport)
	binary.BigEndian.PutUint16(h[2:], p.dport)
	return h
}

// outcome is what strata's chains at one hook do to a packet.
type outcome struct {
	drop bool
	dnat netip.AddrPort // valid when the packet was destination-NATed
	masq bool
	rule string // comment of the rule that decided, "" for the chain policy
}

func (o outcome) String() string {
	switch {
	case o.drop:
		return "drop"
	case o.dnat.IsValid():
		return "dnat to " + o.dnat.String()
	case o.masq:
		return "masquerade"
	}
	return "accept"
}

// evaluator runs packets through a Ruleset. Numgen counters live as long
// as the evaluator, as they live in the kernel as long as the rule.
type evaluator struct {
	r      *Ruleset
	sets   map[string]*evalSet
	numgen map[*expr.Numgen]uint32
}

type evalSet struct {
	s         *nftables.Set
	exact     map[string][]byte     // key -> value (nil for sets)
	intervals []nftables.SetElement // interval sets, by key
	ranges    []nftables.SetElement // interval sets of concatenations: Key to KeyEnd
	fields    []int                 // sizes of a concatenation's fields in a key
}

func newEvaluator(r *Ruleset) (*evaluator, error) {
	e := &evaluator{r: r, sets: make(map[string]*evalSet), numgen: make(map[*expr.Numgen]uint32)}
	for _, st := range r.sets {
		es := &evalSet{s: st.s}
		switch {
		case st.s.Interval && st.s.Concatenation:
			total := 0
			for _, f := range nftables.ConcatSetTypeElements(st.s.KeyType) {
				es.fields = append(es.fields, int(f.Bytes+3)/4*4)
				total += int(f.Bytes+3) / 4 * 4
			}
			if total != int(st.s.KeyType.Bytes) {
				return nil, fmt.Errorf("set %s: fields of %v bytes for keys of %d", st.s.Name, es.fields, st.s.KeyType.Bytes)
			}
			for _, el := range st.elems {
				if len(el.Key) != int(st.s.KeyType.Bytes) || len(el.KeyEnd) != len(el.Key) {
					return nil, fmt.Errorf("set %s: range of %d to %d bytes, the set's keys have %d", st.s.Name, len(el.Key), len(el.KeyEnd), st.s.KeyType.Bytes)
				}
			}
			es.ranges = st.elems
		case st.s.Interval:
			es.intervals = slices.Clone(st.elems)
			slices.SortFunc(es.intervals, func(x, y nftables.SetElement) int { return bytes.Compare(x.Key, y.Key) })
		default:
			es.exact = make(map[string][]byte, len(st.elems))
			for _, el := range st.elems {
				if len(el.Key) != int(st.s.KeyType.Bytes) {
					return nil, fmt.Errorf("set %s: element key of %d bytes, the set's keys have %d", st.s.Name, len(el.Key), st.s.KeyType.Bytes)
				}
				es.exact[string(el.Key)] = el.Val
			}
		}
		e.sets[st.s.Name] = es
	}
	return e, nil
}

// find looks key up: found, and the value for maps.
func (es *evalSet) find(key []byte) (bool, []byte) {
	switch {
	case !es.s.Interval:
		v, ok := es.exact[string(key)]
		return ok, v
	case es.s.Concatenation:
		return es.inRange(key), nil
	}
	// The element with the greatest key <= key decides: a start is a hit,
	// an end (or nothing) a miss.
	i, found := slices.BinarySearchFunc(es.intervals, key, func(el nftables.SetElement, k []byte) int { return bytes.Compare(el.Key, k) })
	if found {
		// A key can be both the end of one interval and the start of the
		// next; any start wins.
		for j := i; j < len(es.intervals) && bytes.Equal(es.intervals[j].Key, key); j++ {
			if !es.intervals[j].IntervalEnd {
				return true, nil
			}
		}
		return false, nil
	}
	if i == 0 {
		return false, nil
	}
	return !es.intervals[i-1].IntervalEnd, nil
}

// inRange reports whether some range holds key: every field of key lies
// between the same fields of the range's start and end.
func (es *evalSet) inRange(key []byte) bool {
	for _, el := range es.ranges {
		hit, off := true, 0
		for _, n := range es.fields {
			k := key[off : off+n]
			if bytes.Compare(k, el.Key[off:off+n]) < 0 || bytes.Compare(k, el.KeyEnd[off:off+n]) > 0 {
				hit = false
				break
			}
			off += n
		}
		if hit {
			return true
		}
	}
	return false
}

// run passes p through every base chain of its hook, in priority order.
func (e *evaluator) run(p packet) (outcome, error) {
	var chains []*chain
	for _, c := range e.r.chains {
		if c.c.Hooknum != nil && *c.c.Hooknum == p.hook {
			chains = append(chains, c)
		}
	}
	slices.SortStableFunc(chains, func(x, y *chain) int { return cmp.Compare(*x.c.Priority, *y.c.Priority) })
	var out outcome
	for _, c := range chains {
		o, err := e.runChain(c, p)
		if err != nil {
			return outcome{}, fmt.Errorf("chain %s: %w", c.c.Name, err)
		}
		if o.drop {
			return o, nil
		}
		if o.dnat.IsValid() || o.masq {
			out = o
		}
	}
	return out, nil
}

// regs is the register file: the verdict register and 64 bytes of data,
// addressed as four 16-byte or sixteen 4-byte registers.
type regs struct {
	data [64]byte
}

func (r *regs) slice(reg uint32, n uint32) ([]byte, error) {
	var off uint32
	switch {
	case reg >= unix.NFT_REG_1 && reg <= unix.NFT_REG_4:
		off = (reg - unix.NFT_REG_1) * 16
	case reg >= unix.NFT_REG32_00 && reg <= unix.NFT_REG32_15:
		off = (reg - unix.NFT_REG32_00) * 4
	default:
		return nil, fmt.Errorf("register %d is not a data register", reg)
	}
	if off+n > uint32(len(r.data)) {
		return nil, fmt.Errorf("%d bytes from register %d run past the registers", n, reg)
	}
	return r.data[off : off+n], nil
}

// store writes b to reg, zeroing the rest of its last 4-byte register as
// the kernel does.
func (r *regs) store(reg uint32, b []byte) error {
	n := (uint32(len(b)) + 3) / 4 * 4
	dst, err := r.slice(reg, n)
	if err != nil {
		return err
	}
	clear(dst)
	copy(dst, b)
	return nil
}

// ruleEnd is how a rule ended: with a verdict, or without one (a match
// failed, or a value was missing: a hook without that interface, a header
// too short) so the next rule runs.
type ruleEnd struct {
	verdict bool // the rule decided
	out     outcome
}

func (e *evaluator) runChain(c *chain, p packet) (outcome, error) {
	for _, rule := range c.rules {
		end, err := e.runRule(c, rule, p)
		if err != nil {
			return outcome{}, fmt.Errorf("rule %q: %w", ruleComment(rule), err)
		}
		if end.verdict {
			end.out.rule = ruleComment(rule)
			return end.out, nil
		}
	}
	if c.c.Policy != nil && *c.c.Policy == nftables.ChainPolicyDrop {
		return outcome{drop: true}, nil
	}
	return outcome{}, nil
}

func (e *evaluator) runRule(c *chain, rule *nftables.Rule, p packet) (ruleEnd, error) {
	var r regs
	for i := range r.data {
		r.data[i] = 0xa5 // garbage: a rule that reads what it never wrote fails to match
	}
	for _, x := range rule.Exprs {
		cont, end, err := e.step(c, &r, x, p)
		if err != nil {
			return ruleEnd{}, fmt.Errorf("%T: %w", x, err)
		}
		if end.verdict {
			return end, nil
		}
		if !cont {
			return ruleEnd{}, nil
		}
	}
	return ruleEnd{}, nil
}

// step runs one expression: whether the rule goes on, and its verdict if
// it decided.
func (e *evaluator) step(c *chain, r *regs, x expr.Any, p packet) (bool, ruleEnd, error) {
	switch x := x.(type) {
	case *expr.Meta:
		return e.meta(r, x, p)
	case *expr.Payload:
		return payload(r, x, p)
	case *expr.Cmp:
		got, err := r.slice(x.Register, uint32(len(x.Data)))
		if err != nil {
			return false, ruleEnd{}, err
		}
		switch x.Op {
		case expr.CmpOpEq:
			return bytes.Equal(got, x.Data), ruleEnd{}, nil
		case expr.CmpOpNeq:
			return !bytes.Equal(got, x.Data), ruleEnd{}, nil
		}
		return false, ruleEnd{}, fmt.Errorf("comparison %d is not eq or neq", x.Op)
	case *expr.Bitwise:
		src, err := r.slice(x.SourceRegister, x.Len)
		if err != nil {
			return false, ruleEnd{}, err
		}
		if len(x.Mask) != int(x.Len) || len(x.Xor) != int(x.Len) {
			return false, ruleEnd{}, fmt.Errorf("mask and xor of %d and %d bytes for length %d", len(x.Mask), len(x.Xor), x.Len)
		}
		out := make([]byte, x.Len)
		for i := range out {
			out[i] = src[i]&x.Mask[i] ^ x.Xor[i]
		}
		return true, ruleEnd{}, r.store(x.DestRegister, out)
	case *expr.Lookup:
		return e.lookup(r, x)
	case *expr.Ct:
		return ct(r, x, p)
	case *expr.Numgen:
		if x.Type != unix.NFT_NG_INCREMENTAL || x.Modulus == 0 {
			return false, ruleEnd{}, fmt.Errorf("numgen type %d modulus %d", x.Type, x.Modulus)
		}
		n := e.numgen[x]
		e.numgen[x] = n + 1
		return true, ruleEnd{}, r.store(x.Register, binaryutil.NativeEndian.PutUint32(n%x.Modulus+x.Offset))
	case *expr.Fib:
		if !x.FlagDADDR || !x.ResultADDRTYPE || x.FlagSADDR || x.FlagIIF || x.FlagOIF || x.FlagMARK || x.ResultOIF || x.ResultOIFNAME {
			return false, ruleEnd{}, fmt.Errorf("only fib daddr type is known: %+v", x)
		}
		typ := uint32(unix.RTN_UNICAST)
		if p.local {
			typ = unix.RTN_LOCAL
		}
		return true, ruleEnd{}, r.store(x.Register, binaryutil.NativeEndian.PutUint32(typ))
	case *expr.Immediate:
		if x.Register == unix.NFT_REG_VERDICT {
			return false, ruleEnd{}, fmt.Errorf("immediate into the verdict register")
		}
		return true, ruleEnd{}, r.store(x.Register, x.Data)
	case *expr.Verdict:
		switch x.Kind {
		case expr.VerdictAccept:
			return false, ruleEnd{verdict: true}, nil
		case expr.VerdictDrop:
			return false, ruleEnd{verdict: true, out: outcome{drop: true}}, nil
		}
		return false, ruleEnd{}, fmt.Errorf("verdict %d is not accept or drop", x.Kind)
	case *expr.Counter:
		return true, ruleEnd{}, nil
	case *expr.NAT:
		return nat(c, r, x)
	case *expr.Masq:
		if c.c.Type != nftables.ChainTypeNAT || *c.c.Hooknum != hookPostrouting || x.ToPorts {
			return false, ruleEnd{}, fmt.Errorf("masquerade in a %s chain at %s", c.c.Type, hookNames[*c.c.Hooknum])
		}
		return false, ruleEnd{verdict: true, out: outcome{masq: true}}, nil
	}
	return false, ruleEnd{}, fmt.Errorf("expression not known to the evaluator")
}

func (e *evaluator) meta(r *regs, x *expr.Meta, p packet) (bool, ruleEnd, error) {
	if x.SourceRegister {
		return false, ruleEnd{}, fmt.Errorf("meta set")
	}
	var v []byte
	switch x.Key {
	case expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME:
		name := p.iif
		if x.Key == expr.MetaKeyOIFNAME {
			name = p.oif
		}
		if name == "" {
			return false, ruleEnd{}, nil // no such device at this hook: the rule ends
		}
		v = make([]byte, 16)
		copy(v, name)
	case expr.MetaKeyL4PROTO:
		v = []byte{p.proto}
	case expr.MetaKeyNFPROTO:
		v = []byte{unix.NFPROTO_IPV4}
		if p.v6 {
			v = []byte{unix.NFPROTO_IPV6}
		}
	default:
		return false, ruleEnd{}, fmt.Errorf("meta key %d", x.Key)
	}
	return true, ruleEnd{}, r.store(x.Register, v)
}

func payload(r *regs, x *expr.Payload, p packet) (bool, ruleEnd, error) {
	if x.OperationType != expr.PayloadLoad || x.CsumType != expr.CsumTypeNone {
		return false, ruleEnd{}, fmt.Errorf("payload write")
	}
	var h []byte
	switch x.Base {
	case expr.PayloadBaseNetworkHeader:
		h = p.network()
	case expr.PayloadBaseTransportHeader:
		h = p.transport()
	default:
		return false, ruleEnd{}, fmt.Errorf("payload base %d", x.Base)
	}
	if x.Offset+x.Len > uint32(len(h)) {
		return false, ruleEnd{}, nil // header too short: the rule ends
	}
	return true, ruleEnd{}, r.store(x.DestRegister, h[x.Offset:x.Offset+x.Len])
}

func ct(r *regs, x *expr.Ct, p packet) (bool, ruleEnd, error) {
	if x.SourceRegister {
		return false, ruleEnd{}, fmt.Errorf("ct set")
	}
	tracked := p.ct != ctInvalid && p.ct != ctUntracked
	switch x.Key {
	case expr.CtKeySTATE:
		bit := map[ctState]uint32{
			ctNew: expr.CtStateBitNEW, ctEstablished: expr.CtStateBitESTABLISHED, ctRelated: expr.CtStateBitRELATED,
			ctInvalid: expr.CtStateBitINVALID, ctUntracked: expr.CtStateBitUNTRACKED,
		}[p.ct]
		return true, ruleEnd{}, r.store(x.Register, binaryutil.NativeEndian.PutUint32(bit))
	case expr.CtKeySTATUS:
		if !tracked {
			return false, ruleEnd{}, nil // no connection: the rule ends
		}
		var status uint32
		if p.dnat {
			status = 1 << 5 // IPS_DST_NAT
		}
		return true, ruleEnd{}, r.store(x.Register, binaryutil.NativeEndian.PutUint32(status))
	}
	return false, ruleEnd{}, fmt.Errorf("ct key %d", x.Key)
}

func (e *evaluator) lookup(r *regs, x *expr.Lookup) (bool, ruleEnd, error) {
	es, ok := e.sets[x.SetName]
	if !ok {
		return false, ruleEnd{}, fmt.Errorf("no set %q", x.SetName)
	}
	key, err := r.slice(x.SourceRegister, es.s.KeyType.Bytes)
	if err != nil {
		return false, ruleEnd{}, err
	}
	found, val := es.find(key)
	if x.IsDestRegSet {
		if !es.s.IsMap || x.Invert {
			return false, ruleEnd{}, fmt.Errorf("map lookup into set %s", es.s.Name)
		}
		if !found {
			return false, ruleEnd{}, nil
		}
		if len(val) != int(es.s.DataType.Bytes) {
			return false, ruleEnd{}, fmt.Errorf("map %s: value of %d bytes, want %d", es.s.Name, len(val), es.s.DataType.Bytes)
		}
		return true, ruleEnd{}, r.store(x.DestRegister, val)
	}
	return found != x.Invert, ruleEnd{}, nil
}

func nat(c *chain, r *regs, x *expr.NAT) (bool, ruleEnd, error) {
	hook := *c.c.Hooknum
	if x.Type != expr.NATTypeDestNAT || c.c.Type != nftables.ChainTypeNAT || (hook != hookPrerouting && hook != hookOutput) {
		return false, ruleEnd{}, fmt.Errorf("nat type %d in a %s chain at %s", x.Type, c.c.Type, hookNames[hook])
	}
	if x.Family != unix.NFPROTO_IPV4 || x.RegAddrMin == 0 || x.RegProtoMin == 0 {
		return false, ruleEnd{}, fmt.Errorf("dnat without an IPv4 address and port: %+v", x)
	}
	addr, err := r.slice(x.RegAddrMin, 4)
	if err != nil {
		return false, ruleEnd{}, err
	}
	if x.RegAddrMax != 0 && x.RegAddrMax != x.RegAddrMin {
		return false, ruleEnd{}, fmt.Errorf("dnat to an address range")
	}
	port, err := r.slice(x.RegProtoMin, 2)
	if err != nil {
		return false, ruleEnd{}, err
	}
	if x.RegProtoMax != 0 && x.RegProtoMax != x.RegProtoMin {
		return false, ruleEnd{}, fmt.Errorf("dnat to a port range")
	}
	to := netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr)), binary.BigEndian.Uint16(port))
	return false, ruleEnd{verdict: true, out: outcome{dnat: to}}, nil
}
