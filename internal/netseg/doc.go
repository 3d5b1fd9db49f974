// Package netseg is strata's network manager on one host: it gives every
// instance an address on a network segment and keeps those addresses across
// daemon restarts.
//
// # Terms
//
//   - Segment: a layer-2 network for instances, one Linux bridge on the
//     host. It has a name (a DNS label, "default" unless a workload names
//     another), an IPv4 subnet (a /24 from the pool unless one is given), a
//     gateway (the subnet's first address, held by the bridge) and the
//     bridge's name (BridgePrefix + name, see Names below).
//   - Pool: the IPv4 prefix that segment subnets are taken from when none is
//     given (Options.Pool, 10.213.0.0/16 by default), one /24 at a time,
//     lowest free first. Subnets never overlap, given or allocated.
//   - Instance: one running copy of a workload, named by its ID
//     ("<workload>-<slot>"), as in package runtime.
//   - Attachment: an instance's place on a segment: an address from the
//     segment's IPAM (with a MAC derived from it) and a port of the
//     segment's bridge. It is of one of two kinds (Kind). A veth attachment
//     (Attach), for containers, is a network namespace of its own,
//     bind-mounted at NetNSDir/<instance ID> (as `ip netns` does), holding
//     eth0 with the instance's address, lo, and a default route via the
//     gateway; eth0 is one end of a veth pair whose host end is the bridge
//     port. A tap attachment (AttachTap), for VMs, is a persistent
//     tap device in the Host namespace that is the bridge port; OpenTap
//     opens it, and QEMU, handed the open file, carries the VM's frames
//     through it (the VM sets the address on its own NIC). An instance has
//     at most one attachment, of one kind: Detach it to change the kind.
//   - Host: the network namespace that holds the bridges, the host ends of
//     the veth pairs and the taps. For the daemon it is its own namespace
//     (RootHost); tests pass a namespace they created (NamespaceHost), so
//     that nothing is created in the machine's own namespace. QEMU may run
//     in any namespace: the tap reaches it as an open file.
//   - IPAM: each segment hands out its addresses round-robin from the one
//     after the last address it gave, wrapping at the end of the subnet, so a
//     freed address is reused as late as possible. The network address, the
//     gateway and the broadcast address are never given out.
//   - State: segments and attachments are written to StateDir/network.json
//     (atomically: temporary file, fsync, rename) before the host is
//     changed, so a restarted daemon re-adopts every attachment with the
//     same address, and an interrupted operation is finished or undone by
//     the next Attach, AttachTap, Detach or Cleanup.
//
// # Names
//
// Everything the manager creates on the host starts with BridgePrefix
// ("st-"). A bridge is "st-<segment>"; when that is longer than the 15
// characters Linux allows in an interface name, the segment name is cut and
// six hex digits of its SHA-256 are appended ("st-payme-1a2b3c"). A host
// veth is "st-" followed by hex digits of the SHA-256 of the instance ID,
// up to 15 characters; a tap the same, but hashing "tap/" followed by the
// instance ID, so that an instance's tap and veth names differ. All are
// deterministic, so a new Manager finds what an earlier one made.
//
// # Failure and repair
//
// Operations that take several steps undo the steps already done, in
// reverse order, when a later one fails. Attach of an instance that is
// already attached checks the namespace, both veth ends, the address and
// the route; if anything is missing it replaces the veth pair, keeping the
// address and a namespace that is still mounted (so the processes in it
// stay). Reattach always starts from a new namespace (gVisor's runsc strips
// the address from the namespace when a sandbox exits, so each sandbox
// start needs a fresh one). Attach returns once both veth ends are
// operationally up, so the instance's first packets are not dropped.
// AttachTap of an instance already attached checks the bridge and the tap
// and replaces a missing or broken tap, keeping the address; a tap has no
// carrier until QEMU opens it, so AttachTap does not wait for it.
//
// # Port guard
//
// Every bridge port is bound to its instance (guard.go): frames that enter
// a bridge from an instance's host veth or tap must carry the instance's
// MAC and, for IPv4 and ARP, its address, so no instance can answer ARP
// for the gateway or a neighbour or send with another's source address.
// The bindings live in table bridge strata (GuardTable) in the Host
// namespace; Attach and AttachTap add a port's binding before the port
// exists, Detach and Cleanup remove it, and the last detach deletes the
// table. Each bridge also has strict reverse-path filtering
// (net.ipv4.conf.<bridge>.rp_filter=1).
//
// # Subpackages
//
// policy compiles segments' flows, egress and published ports into
// strata's nftables table; dns is the name server on each gateway;
// netstate is the segment model the controllers and the network share
// (Segment is its type); hostnet puts them together for the controllers,
// turning the state they compute into the policy and the names. See
// docs/decisions/network.md.
package netseg
