package policy

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// The building blocks of strata's rules: each returns the expressions of
// one match or action, reading and writing 32-bit registers counted from
// reg(0). Values the kernel keeps in host byte order (ct state and status,
// fib results, numgen) are encoded in host order; packet fields in network
// order, as nft does.

// reg is the i-th 32-bit data register.
func reg(i uint32) uint32 { return unix.NFT_REG32_00 + i }

// Key sizes in registers: an interface name takes 16 bytes; every field
// of a concatenation is padded to a multiple of 4.
const (
	ifnameLen  = 16
	ifnameRegs = ifnameLen / 4
)

// loadIfname puts the input or output interface name in reg(r)...reg(r+3).
func loadIfname(key expr.MetaKey, r uint32) expr.Any {
	return &expr.Meta{Key: key, Register: reg(r)}
}

// hasPrefix matches interfaces (key: iifname or oifname) whose name starts
// with prefix, or with neq, those whose name does not. Comparing only
// len(prefix) bytes is how nft matches "st-*".
func hasPrefix(key expr.MetaKey, prefix string, neq bool) []expr.Any {
	op := expr.CmpOpEq
	if neq {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		loadIfname(key, 0),
		&expr.Cmp{Op: op, Register: reg(0), Data: []byte(prefix)},
	}
}

// ipv4Only matches IPv4 packets; in an inet table every IPv4 header field
// needs it first.
func ipv4Only() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg(0), Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// ctStateIn matches packets whose conntrack state is any of bits
// (expr.CtStateBit*).
func ctStateIn(bits uint32) []expr.Any {
	return ctBits(expr.CtKeySTATE, bits)
}

// ctDNAT matches packets of connections that were destination-NATed.
func ctDNAT() []expr.Any {
	return ctBits(expr.CtKeySTATUS, ctStatusDNAT)
}

// ctStatusDNAT is IPS_DST_NAT, the conntrack status bit of a connection
// whose destination was translated.
const ctStatusDNAT = 1 << 5

func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: key, Register: reg(0)},
		&expr.Bitwise{
			SourceRegister: reg(0),
			DestRegister:   reg(0),
			Len:            4,
			Mask:           binaryutil.NativeEndian.PutUint32(bits),
			Xor:            make([]byte, 4),
		},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg(0), Data: make([]byte, 4)},
	}
}

// l4proto loads the transport protocol (one byte) into reg(r).
func l4proto(r uint32) expr.Any { return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg(r)} }

// dport loads the transport header's destination port (bytes 2-3, as
// nft's "th dport") into reg(r).
func dport(r uint32) expr.Any {
	return &expr.Payload{DestRegister: reg(r), Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
}

// IPv4 header offsets.
const (
	ipv4Saddr = 12
	ipv4Daddr = 16
)

// ipv4Field loads the IPv4 address at offset (ipv4Saddr, ipv4Daddr) into reg(r).
func ipv4Field(offset, r uint32) expr.Any {
	return &expr.Payload{DestRegister: reg(r), Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}
}

// protoPort matches a transport protocol and destination port.
func protoPort(proto uint8, port uint16) []expr.Any {
	return []expr.Any{
		l4proto(0),
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg(0), Data: []byte{proto}},
		dport(0),
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg(0), Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// daddrLocal matches packets to an address of the host ("fib daddr type
// local").
func daddrLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: reg(0), FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg(0), Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

// notLoopback matches IPv4 packets whose destination is outside 127.0.0.0/8.
func notLoopback() []expr.Any {
	return []expr.Any{
		ipv4Field(ipv4Daddr, 0),
		&expr.Bitwise{SourceRegister: reg(0), DestRegister: reg(0), Len: 4, Mask: []byte{255, 0, 0, 0}, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg(0), Data: []byte{127, 0, 0, 0}},
	}
}

// lookup matches when the key in reg(r) onwards is in s.
func lookup(s *nftables.Set, r uint32) expr.Any {
	return &expr.Lookup{SourceRegister: reg(r), SetName: s.Name, SetID: s.ID}
}

// lookupMap replaces the key in reg(r) onwards with its value in map m;
// a key not in m ends the rule.
func lookupMap(m *nftables.Set, r uint32) expr.Any {
	return &expr.Lookup{SourceRegister: reg(r), DestRegister: reg(r), IsDestRegSet: true, SetName: m.Name, SetID: m.ID}
}

func accept() expr.Any { return &expr.Verdict{Kind: expr.VerdictAccept} }

// drop counts the packets it drops, so `nft list table inet strata` shows
// what the policy stopped.
func drop() []expr.Any {
	return []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}
}

// comment is a rule's userdata holding text that nft lists as its comment.
func comment(text string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, text)
}

// ruleComment is the comment of r, or "".
func ruleComment(r *nftables.Rule) string {
	s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return s
}

// Set element keys. A concatenation pads every field to 4 bytes.

func ifnameKey(name string) []byte {
	b := make([]byte, ifnameLen)
	copy(b, name)
	return b
}

func protoKey(proto uint8) []byte { return []byte{proto, 0, 0, 0} }

func portKey(port uint16) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b, port)
	return b
}

func addrKey(a netip.Addr) []byte {
	b := a.As4()
	return b[:]
}

func concat(fields ...[]byte) []byte {
	n := 0
	for _, f := range fields {
		n += len(f)
	}
	out := make([]byte, 0, n)
	for _, f := range fields {
		out = append(out, f...)
	}
	return out
}
