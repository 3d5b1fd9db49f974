package policy

import "net/netip"

// samplePolicy is three segments: "web" reaches the outside and is
// published on tcp/8080; "app" admits web on tcp/7007; "db" admits app on
// every port and names a segment that does not exist yet.
func samplePolicy() Policy {
	return Policy{
		Segments: []Segment{
			{Name: "web", Bridge: "st-web", Subnet: netip.MustParsePrefix("10.213.1.0/24"), Gateway: netip.MustParseAddr("10.213.1.1"), Egress: true},
			{Name: "app", Bridge: "st-app", Subnet: netip.MustParsePrefix("10.213.2.0/24"), Gateway: netip.MustParseAddr("10.213.2.1"),
				Allow: []Allow{{From: "web", Ports: []Port{{7007, "tcp"}}}}},
			{Name: "db", Bridge: "st-db", Subnet: netip.MustParsePrefix("10.213.3.0/24"), Gateway: netip.MustParseAddr("10.213.3.1"),
				Allow: []Allow{{From: "app"}, {From: "later"}}},
		},
		Publish: []Publish{
			{HostPort: 8080, Protocol: "tcp", Segment: "web", Targets: []netip.AddrPort{
				netip.MustParseAddrPort("10.213.1.2:7007"), netip.MustParseAddrPort("10.213.1.3:7007")}},
		},
	}
}
