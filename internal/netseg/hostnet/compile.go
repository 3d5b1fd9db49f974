package hostnet

import (
	"net/netip"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/netseg/dns"
	"strata.dev/strata/internal/netseg/netstate"
	"strata.dev/strata/internal/netseg/policy"
)

// Compile turns the state the controllers computed into what the host enforces: the
// policy of strata's nftables table (prefix starts the name of every interface strata
// makes) and the names the gateways' name server answers. Segment specs are defaulted
// (netstate.State). It is a pure function of its inputs.
func Compile(st netstate.State, prefix string) (policy.Policy, dns.Records) {
	p := policy.Policy{Prefix: prefix}
	recs := dns.Records{Names: map[string]map[string][]netip.Addr{}, Egress: map[string]bool{}}
	for _, s := range st.Segments {
		seg := policy.Segment{Name: s.Name, Bridge: s.Bridge, Subnet: s.Subnet, Gateway: s.Gateway, Egress: s.Spec.Egress != v1alpha1.EgressDeny}
		for _, a := range s.Spec.Allow {
			al := policy.Allow{From: a.From.Segment}
			for _, fp := range a.Ports {
				al.Ports = append(al.Ports, policy.Port{Port: uint16(fp.Port), Protocol: string(fp.Protocol)})
			}
			seg.Allow = append(seg.Allow, al)
		}
		p.Segments = append(p.Segments, seg)
		recs.Egress[s.Name] = seg.Egress
		recs.Names[s.Name] = map[string][]netip.Addr{}
	}
	for seg, names := range st.Names {
		if recs.Names[seg] == nil {
			recs.Names[seg] = map[string][]netip.Addr{}
		}
		for name, ips := range names {
			if len(ips) == 0 {
				continue
			}
			recs.Names[seg][name] = append(recs.Names[seg][name], ips...)
		}
	}
	for _, pub := range st.Publish {
		pp := policy.Publish{HostPort: uint16(pub.HostPort), Protocol: string(pub.Protocol), Segment: pub.Segment}
		for _, ip := range pub.IPs {
			pp.Targets = append(pp.Targets, netip.AddrPortFrom(ip, uint16(pub.Port)))
		}
		p.Publish = append(p.Publish, pp)
	}
	return p, recs
}
