// Package netstate is the segment model that the controllers and the host's network
// share, in netip types: a segment as the host has it, an instance's attachment, and the
// state the host enforces (flows, egress, published ports, names).
//
// The controllers (package control) compute a State from the API objects and hand it to
// the network; the network (package netseg's Manager, and hostnet, which turns a State into
// nftables rules and name records) implements what they ask. Addresses are parsed once,
// where they come from API objects, and stay netip values from there on; segment specs
// arrive defaulted (v1alpha1.SegmentSpec.SetDefaults), so the network applies no
// defaults of its own.
package netstate

import (
	"fmt"
	"net/netip"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// Segment is a layer-2 network for instances: one bridge on the host.
type Segment struct {
	Name    string
	Subnet  netip.Prefix
	Gateway netip.Addr // the subnet's first address, held by the bridge
	Bridge  string     // the bridge's interface name on the host
}

// Attachment is what an instance gets from its segment: a network namespace to join (a
// container or a sandbox) or a tap and an address (a VM), and its address.
type Attachment struct {
	NetNS string         // the network namespace a container or sandbox joins
	VMNet *runtime.VMNet // a VM's tap and address
	IP    netip.Addr     // the instance's address
	// ResolvConf is a host file to mount as a container's or sandbox's /etc/resolv.conf (a
	// VM learns its resolver from VMNet.DNS); empty: the image's own.
	ResolvConf string
}

// State is everything the host enforces about segments, computed from the objects.
type State struct {
	// Segments are every segment the host has, each with its spec (defaulted; for
	// segments that no Segment object declares, the defaulted zero spec: egress allowed,
	// no flows in).
	Segments []SegmentState
	// Names are the addresses of running instances, by segment: workload names (every
	// running instance) and instance IDs (one each).
	Names map[string]map[string][]netip.Addr
	// Publish are the published ports of running instances.
	Publish []PublishedPort
}

// SegmentState is one segment and what it allows.
type SegmentState struct {
	Segment
	Spec     v1alpha1.SegmentSpec
	Declared bool // a Segment object declares it
}

// PublishedPort is a host port forwarded to a workload's running instances.
type PublishedPort struct {
	Workload, Segment string
	HostPort, Port    int32
	Protocol          v1alpha1.Protocol
	IPs               []netip.Addr
}

// ParseSubnet reads a Segment object's spec.subnet: the zero prefix for "" (one from the
// pool), else the IPv4 CIDR it names.
func ParseSubnet(segment, subnet string) (netip.Prefix, error) {
	if subnet == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("segment %s: subnet %q: %w", segment, subnet, err)
	}
	return p, nil
}
