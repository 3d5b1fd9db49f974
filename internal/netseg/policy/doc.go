// Package policy turns strata's network policy into nftables rules and
// puts them in the kernel.
//
// # Terms
//
//   - Segment: a zone of instances behind one Linux bridge (see package
//     netseg), with an IPv4 subnet whose gateway address the bridge holds.
//     Traffic within a segment is always allowed.
//   - Allow: a flow admitted into a segment from another one, on some
//     ports of TCP or UDP, or on everything. Connections are allowed one
//     way; their replies pass by connection tracking. An allow from a
//     segment that does not exist admits nothing until it does.
//   - Egress: a segment with egress may open connections to anything
//     beyond strata's interfaces (the host's uplinks, other bridges on the
//     host), masqueraded to the address of the interface they leave by.
//     Without egress its packets never leave strata's bridges, except as
//     replies and as allowed flows.
//   - Published port: a TCP or UDP port of the host forwarded (DNAT) to the
//     instances that serve it, new connections to each in turn. It answers
//     on every address of the host except 127.0.0.0/8, from anywhere that
//     reaches the host, instances included. One without targets, or whose
//     segment does not exist (yet), is not forwarded.
//   - Strata's interfaces: every interface whose name starts with the
//     Prefix ("st-": bridges, host veths, taps).
//
// # The ruleset
//
// Everything lives in one table, inet strata (Table); nothing else is ever
// touched. Compile, a pure function, builds the table; Apply puts it in
// the kernel; Current reads it back; Remove deletes it.
//
// Every base chain has policy accept, and a rule that is not about
// strata's interfaces never drops: packets that are not strata's pass
// through the table unchanged, and other tables (the host's firewall,
// other software) keep their say, since an accept in one table does not
// stop another table's chains at the same hook. Drops count the packets
// they drop. Flows are set elements, not rules, so a policy of thousands
// of flows is a handful of rules and one hash lookup per new connection.
//
// Sets (keys are interface names, addresses, protocols and ports):
//
//	same_segment     bridge . bridge                   each segment with itself
//	allow_all        bridge . bridge                   from . to, every port
//	allow_ports      bridge . bridge . proto . port    from . to, one port
//	egress           bridge                            segments with egress
//	egress_subnets   address ranges                    their subnets, merged
//	segment_subnets  bridge . address range            each segment's subnet
//	dns              bridge . address . proto . port   gateway, udp and tcp 53
//	publish_P_N      0..n-1 : address . port           targets of host port N/P
//
// Chain forward (filter, hook forward, priority filter), in order:
//
//  1. conntrack state established or related: accept (replies);
//  2. input and output interfaces in same_segment: accept;
//  3. state invalid, from or to a strata interface: drop;
//  4. conntrack status dnat, to a strata interface: accept (published
//     ports; the DNAT rules decided);
//  5. input . output interface in allow_all: accept;
//  6. input . output interface . protocol . destination port in
//     allow_ports: accept;
//  7. input interface in egress, output interface not strata's: accept;
//  8. from a strata interface: drop; to a strata interface: drop.
//
// Chain input (filter, hook input): replies accept; input interface .
// destination address . protocol . port in dns: accept (the DNS server on
// the segment's own gateway); anything else from a strata interface: drop.
// Instances cannot reach the host's services; the host reaching instances
// is output, which the table leaves alone, and the replies are
// established.
//
// Chains prerouting and output (nat, priority dstnat) hold one rule per
// published port with targets: IPv4, the protocol and port, destination
// an address of the host ("fib daddr type local"; output also excludes
// 127.0.0.0/8, whose packets cannot be routed to an instance), then "numgen
// inc mod n" looked up in the port's map gives the target to DNAT to. A
// published port without targets has no rule.
//
// Chain postrouting (nat, priority srcnat): IPv4 from an egress subnet out
// of an interface that is not strata's: masquerade. And a DNATed
// connection whose source is in the subnet of the segment it goes to
// (segment_subnets, keyed by output interface and source): masquerade, so
// that an instance reaching a published port served by its own segment
// gets the replies through the host, not straight from the target.
//
// # Replacing the table atomically
//
// Apply sends one netlink batch: add the table (which does nothing if it
// exists), delete it, add it again with all its sets, elements, chains and
// rules. The kernel commits a batch whole or not at all, so packets see
// the old ruleset or the new one, never an empty table or half of each;
// a batch the kernel refuses leaves the old ruleset in force; and nothing
// is left over from an older policy or a hand edit. The batch goes in one
// sendmsg: make the connection with LargeBatches so that its socket buffer
// holds rulesets of any size (the system's default holds about 2,000
// flows). The first forward rule's comment carries the ruleset's Digest,
// so after a restart Current tells whether the kernel holds what Compile
// makes.
//
// # br_netfilter
//
// When the br_netfilter module is loaded and net.bridge.bridge-nf-call-
// iptables is 1 (the default in every namespace once it is loaded),
// packets bridged between two ports of one bridge also cross the inet
// hooks. At forward their input and output interface are then the bridge
// itself, not the ports, so "same_segment" admits them, whatever their
// conntrack state, exactly as when they are bridged without netfilter.
// (nft's "meta ibrname" is not available in inet tables.) At postrouting a
// bridged packet has no input interface, which is why the same-segment
// masquerade keys on the output interface and the source address. A
// connection from an instance to a published port whose chosen target is
// that same instance is bridged back out of the port it came in by
// ("bridged DNAT"); the bridge does that only for ports in hairpin mode,
// so netseg must set hairpin mode on every bridge port for such
// connections to work with br_netfilter. Without br_netfilter they are
// routed by the host and need nothing. The package's traffic test runs
// with bridge-nf-call-iptables at 0 and at 1.
//
// IPv6: segments are IPv4. IPv6 within a segment passes (same_segment);
// allow_all and allow_ports admit it between segments like IPv4; nothing
// is masqueraded or published for it, and IPv6 from instances to the host
// is dropped.
package policy
