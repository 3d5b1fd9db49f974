package netseg

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// The port guard binds every bridge port to its instance: a frame that
// enters a segment's bridge from an instance's host veth or tap must carry
// the instance's MAC as its source, and, when it is IPv4 or ARP, the
// instance's address as its sender. So no instance can answer ARP for the
// gateway or a neighbour, take over another's MAC in the bridge's
// forwarding table, or send IPv4 with another instance's (or segment's)
// source address. The gateway's address is held by the bridge itself and
// given to no instance, so only the host can claim it.
//
// The rules live in table bridge strata (GuardTable), in the Host
// namespace, apart from the inet table of package policy. The Manager
// replaces the table whole, in one netlink batch, whenever the set of
// attachments changes, before a new port exists and after an old one is
// gone; the last detach deletes it. The chain matches on the interface
// name prefix (Options.BridgePrefix), so a port of strata's that no
// attachment accounts for has no binding and drops every frame.
//
//	table bridge strata
//	  set port_mac   ifname . ether_addr      each port's MAC
//	  set port_ip    ifname . ipv4_addr       each port's IPv4 address
//	  chain prerouting (filter, hook prerouting, priority filter: -200)
//	    iifname "st-*" jump port_guard
//	  chain port_guard
//	    iifname . ether saddr != @port_mac drop
//	    ether type arp iifname . arp saddr ether != @port_mac drop
//	    ether type arp iifname . arp saddr ip != @port_ip drop
//	    ether type ip iifname . ip saddr != @port_ip drop
//	    ether type { ip, arp, ip6 } accept
//	    drop                                   (VLAN tags, other protocols)
//
// IPv6 frames are bound to the port's MAC only: segments are IPv4, and
// strata gives instances no IPv6 address.

// GuardTable is the name of the nftables table, of family bridge, that
// holds the port guard.
const GuardTable = "strata"

const (
	guardSetMAC  = "port_mac"
	guardSetIP   = "port_ip"
	guardEntry   = "prerouting"
	guardChain   = "port_guard"
	ifnameSize   = 16
	etherTypeIP  = 0x0800
	etherTypeARP = 0x0806
	etherTypeIP6 = 0x86dd
)

// bridgeFilterPriority is the bridge family's "filter" priority
// (NF_BR_PRI_FILTER_BRIDGED).
const bridgeFilterPriority = -200

// Offsets in the Ethernet and ARP (Ethernet/IPv4) headers, and in the IPv4
// header.
const (
	ethSaddr   = 6
	ethType    = 12
	arpSha     = 8
	arpSpa     = 14
	ipv4Source = 12
)

// guardPort is one bridge port and the instance behind it.
type guardPort struct {
	name string
	mac  net.HardwareAddr
	ip   netip.Addr
}

// guardPorts lists the ports of every attachment, sorted by name; m.mu is
// held.
func (m *Manager) guardPorts() []guardPort {
	out := make([]guardPort, 0, len(m.attachments))
	for _, r := range m.attachments {
		name := r.HostVeth
		if r.Kind == KindTap {
			name = r.Tap
		}
		out = append(out, guardPort{name: name, mac: macFor(r.IP), ip: r.IP})
	}
	slices.SortFunc(out, func(a, b guardPort) int { return strings.Compare(a.name, b.name) })
	return out
}

// syncGuard replaces table bridge strata in the Host namespace with the
// bindings of the current attachments, or deletes it when there are none;
// m.mu is held.
func (m *Manager) syncGuard() error {
	if err := m.step("guard"); err != nil {
		return err
	}
	ports := m.guardPorts()
	err := m.opts.Host.Do(func() error {
		// A connection without a namespace option opens its socket on
		// the calling thread, which Do has put in the Host namespace.
		c, err := nftables.New()
		if err != nil {
			return err
		}
		queueGuard(c, m.opts.BridgePrefix, ports)
		return c.Flush()
	})
	if err != nil {
		return fmt.Errorf("replace table bridge %s (the port bindings of %d instances): %w", GuardTable, len(ports), err)
	}
	return nil
}

// queueGuard queues on c the batch that replaces table bridge strata with
// the bindings of ports (or only deletes it, for none).
func queueGuard(c *nftables.Conn, prefix string, ports []guardPort) {
	t := &nftables.Table{Name: GuardTable, Family: nftables.TableFamilyBridge}
	c.AddTable(t)
	c.DelTable(t)
	if len(ports) == 0 {
		return
	}
	c.AddTable(t)
	macs := &nftables.Set{Table: t, Name: guardSetMAC, ID: 1, Concatenation: true,
		KeyType: nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeEtherAddr)}
	ips := &nftables.Set{Table: t, Name: guardSetIP, ID: 2, Concatenation: true,
		KeyType: nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIPAddr)}
	var macElems, ipElems []nftables.SetElement
	for _, p := range ports {
		name := make([]byte, ifnameSize)
		copy(name, p.name)
		mac := make([]byte, 8) // 6 bytes, padded to 4-byte words in a concatenation
		copy(mac, p.mac)
		ip := p.ip.As4()
		macElems = append(macElems, nftables.SetElement{Key: append(slices.Clone(name), mac...)})
		ipElems = append(ipElems, nftables.SetElement{Key: append(name, ip[:]...)})
	}
	// Errors of AddSet are only about anonymous or malformed sets; these
	// are neither, and Flush would report a refusal anyway.
	_ = c.AddSet(macs, macElems)
	_ = c.AddSet(ips, ipElems)

	policy := nftables.ChainPolicyAccept
	entry := c.AddChain(&nftables.Chain{Name: guardEntry, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(bridgeFilterPriority), Policy: &policy})
	guard := c.AddChain(&nftables.Chain{Name: guardChain, Table: t})
	rule := func(ch *nftables.Chain, note string, exprs ...expr.Any) {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, note)})
	}
	r0, r4 := uint32(unix.NFT_REG32_00), uint32(unix.NFT_REG32_04)
	iif := &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: r0}
	etherType := func(typ uint16) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: r4, Base: expr.PayloadBaseLLHeader, Offset: ethType, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: r4, Data: binary.BigEndian.AppendUint16(nil, typ)},
		}
	}
	notIn := func(s *nftables.Set) expr.Any {
		return &expr.Lookup{SourceRegister: r0, SetName: s.Name, SetID: s.ID, Invert: true}
	}
	drop := []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}

	rule(entry, "frames from strata's ports",
		iif, &expr.Cmp{Op: expr.CmpOpEq, Register: r0, Data: []byte(prefix)},
		&expr.Verdict{Kind: expr.VerdictJump, Chain: guardChain})
	rule(guard, "source MAC not the port's", append([]expr.Any{iif,
		&expr.Payload{DestRegister: r4, Base: expr.PayloadBaseLLHeader, Offset: ethSaddr, Len: 6},
		notIn(macs)}, drop...)...)
	rule(guard, "ARP sender MAC not the port's", slices.Concat(etherType(etherTypeARP), []expr.Any{iif,
		&expr.Payload{DestRegister: r4, Base: expr.PayloadBaseNetworkHeader, Offset: arpSha, Len: 6},
		notIn(macs)}, drop)...)
	rule(guard, "ARP sender address not the port's", slices.Concat(etherType(etherTypeARP), []expr.Any{iif,
		&expr.Payload{DestRegister: r4, Base: expr.PayloadBaseNetworkHeader, Offset: arpSpa, Len: 4},
		notIn(ips)}, drop)...)
	rule(guard, "IPv4 source not the port's", slices.Concat(etherType(etherTypeIP), []expr.Any{iif,
		&expr.Payload{DestRegister: r4, Base: expr.PayloadBaseNetworkHeader, Offset: ipv4Source, Len: 4},
		notIn(ips)}, drop)...)
	for _, typ := range []uint16{etherTypeIP, etherTypeARP, etherTypeIP6} {
		rule(guard, fmt.Sprintf("ether type %#04x", typ), append(etherType(typ), &expr.Verdict{Kind: expr.VerdictAccept})...)
	}
	rule(guard, "other ether types", drop...)
}
