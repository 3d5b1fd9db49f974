package hostnet

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/netseg/dns"
	"strata.dev/strata/internal/netseg/netstate"
	"strata.dev/strata/internal/netseg/policy"
)

func segment(name, subnet, bridge string) netstate.Segment {
	p := netip.MustParsePrefix(subnet)
	return netstate.Segment{Name: name, Subnet: p, Gateway: p.Addr().Next(), Bridge: bridge}
}

func defaulted(spec v1alpha1.SegmentSpec) v1alpha1.SegmentSpec {
	spec.SetDefaults()
	return spec
}

// TestCompile: the controllers' state becomes the table's policy and the name server's
// records: egress and flows per segment (ports as the table counts them), names per
// segment (every segment listed, with names or not), published ports forwarded to the
// running instances' addresses.
func TestCompile(t *testing.T) {
	web, db := netip.MustParseAddr("10.213.0.10"), netip.MustParseAddr("10.213.40.5")
	st := netstate.State{
		Segments: []netstate.SegmentState{
			{Segment: segment("default", "10.213.0.0/24", "st-default"), Spec: defaulted(v1alpha1.SegmentSpec{})},
			{Segment: segment("payments", "10.213.40.0/24", "st-payments"), Declared: true, Spec: defaulted(v1alpha1.SegmentSpec{
				Egress: v1alpha1.EgressDeny,
				Allow: []v1alpha1.AllowRule{
					{From: v1alpha1.SegmentRef{Segment: "default"}, Ports: []v1alpha1.FlowPort{{Port: 5432}, {Port: 53, Protocol: v1alpha1.ProtocolUDP}}},
					{From: v1alpha1.SegmentRef{Segment: "ops"}},
				},
			})},
		},
		Names: map[string]map[string][]netip.Addr{
			"default":  {"web": {web}, "web-0": {web}},
			"payments": {"db": {db}, "db-0": {db}},
			"gone":     {"old": nil},
		},
		Publish: []netstate.PublishedPort{
			{Workload: "web", Segment: "default", HostPort: 18080, Port: 80, Protocol: v1alpha1.ProtocolTCP, IPs: []netip.Addr{web}},
			{Workload: "db", Segment: "payments", HostPort: 15432, Port: 5432, Protocol: v1alpha1.ProtocolTCP},
		},
	}
	p, recs := Compile(st, "st-")
	want := policy.Policy{
		Prefix: "st-",
		Segments: []policy.Segment{
			{Name: "default", Bridge: "st-default", Subnet: netip.MustParsePrefix("10.213.0.0/24"), Gateway: netip.MustParseAddr("10.213.0.1"), Egress: true},
			{Name: "payments", Bridge: "st-payments", Subnet: netip.MustParsePrefix("10.213.40.0/24"), Gateway: netip.MustParseAddr("10.213.40.1"),
				Allow: []policy.Allow{
					{From: "default", Ports: []policy.Port{{Port: 5432, Protocol: "tcp"}, {Port: 53, Protocol: "udp"}}},
					{From: "ops"},
				}},
		},
		Publish: []policy.Publish{
			{HostPort: 18080, Protocol: "tcp", Segment: "default", Targets: []netip.AddrPort{netip.AddrPortFrom(web, 80)}},
			{HostPort: 15432, Protocol: "tcp", Segment: "payments"},
		},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("policy\n%+v\nwant\n%+v", p, want)
	}
	wantRecs := dns.Records{
		Names: map[string]map[string][]netip.Addr{
			"default":  {"web": {web}, "web-0": {web}},
			"payments": {"db": {db}, "db-0": {db}},
			"gone":     {},
		},
		Egress: map[string]bool{"default": true, "payments": false},
	}
	if !reflect.DeepEqual(recs, wantRecs) {
		t.Errorf("records\n%+v\nwant\n%+v", recs, wantRecs)
	}
	if _, err := policy.Compile(p); err != nil {
		t.Errorf("the compiled policy does not compile into a ruleset: %v", err)
	}
}

// TestCompileWithoutSegments: an empty state is an empty policy, which removes strata's
// table (Enforce), and records that answer no names.
func TestCompileWithoutSegments(t *testing.T) {
	p, recs := Compile(netstate.State{}, "st-")
	if len(p.Segments) != 0 || len(p.Publish) != 0 || len(recs.Names) != 0 || len(recs.Egress) != 0 {
		t.Errorf("policy %+v, records %+v: want both empty", p, recs)
	}
}

// TestCompileNeedsDefaultedSpecs: specs arrive defaulted (the API package's defaults,
// applied by the controllers); an allowed port without a protocol is not guessed here
// but refused by the policy compiler.
func TestCompileNeedsDefaultedSpecs(t *testing.T) {
	st := netstate.State{Segments: []netstate.SegmentState{{
		Segment: segment("a", "10.213.1.0/24", "st-a"),
		Spec:    v1alpha1.SegmentSpec{Egress: v1alpha1.EgressAllow, Allow: []v1alpha1.AllowRule{{From: v1alpha1.SegmentRef{Segment: "b"}, Ports: []v1alpha1.FlowPort{{Port: 80}}}}},
	}}}
	p, _ := Compile(st, "st-")
	if _, err := policy.Compile(p); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("policy.Compile of an undefaulted port: %v, want ErrInvalid", err)
	}
}
