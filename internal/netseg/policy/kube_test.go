package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/kube/netpol"
	"strata.dev/strata/internal/kube/render"
	"strata.dev/strata/internal/load"
)

// The segments strata renders as Kubernetes NetworkPolicies (package render) must allow
// exactly what this package's rules allow on one host. These tests compute both: the
// verdicts of the compiled nftables rules (the evaluator of eval_test.go) and those of the
// rendered policies (package netpol), for every pair of segments, protocol and port, plus
// the Internet and the DNS server, and want them equal.

// TestKubernetesPoliciesMatchExamples checks the hybrid example and the estate of the
// render package's golden tests.
func TestKubernetesPoliciesMatchExamples(t *testing.T) {
	for _, file := range []string{
		filepath.Join("..", "..", "..", "examples", "hybrid", "app.yaml"),
		filepath.Join("..", "..", "kube", "render", "testdata", "estate.yaml"),
	} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			n := compareMatrix(t, readDocuments(t, file))
			t.Logf("%d connections agree", n)
		})
	}
}

// TestKubernetesPoliciesMatchRandom checks seeded random segment sets.
func TestKubernetesPoliciesMatchRandom(t *testing.T) {
	s := *seedFlag
	if s == 0 {
		s = 20261126
	}
	t.Logf("seed %d (replay with -seed=%d)", s, s)
	rng := rand.New(rand.NewPCG(s, 2))
	total := 0
	for i := range 60 {
		docs := randDocuments(rng)
		total += compareMatrix(t, docs)
		if t.Failed() {
			t.Fatalf("set %d: %s", i, describeDocs(docs))
		}
	}
	t.Logf("%d connections agree", total)
}

// TestKubernetesPoliciesHandWritten pins a few verdicts a person can check by reading the
// segments, so that the two sides cannot agree by both being wrong in the same way.
func TestKubernetesPoliciesHandWritten(t *testing.T) {
	docs := render.Documents{
		Segments: []v1alpha1.Segment{
			{Metadata: v1alpha1.ObjectMeta{Name: "web"}, Spec: v1alpha1.SegmentSpec{Egress: v1alpha1.EgressAllow}},
			{Metadata: v1alpha1.ObjectMeta{Name: "app"}, Spec: v1alpha1.SegmentSpec{Egress: v1alpha1.EgressDeny,
				Allow: []v1alpha1.AllowRule{{From: v1alpha1.SegmentRef{Segment: "web"}, Ports: []v1alpha1.FlowPort{{Port: 8080, Protocol: v1alpha1.ProtocolTCP}}}}}},
			{Metadata: v1alpha1.ObjectMeta{Name: "db"}, Spec: v1alpha1.SegmentSpec{Egress: v1alpha1.EgressDeny,
				Allow: []v1alpha1.AllowRule{{From: v1alpha1.SegmentRef{Segment: "app"}}, {From: v1alpha1.SegmentRef{Segment: "later"}}}}},
		},
		Workloads: []v1alpha1.Workload{{Metadata: v1alpha1.ObjectMeta{Name: "job"}, Spec: v1alpha1.WorkloadSpec{Image: "x"}}},
	}
	m := newMatrix(t, docs)
	for _, c := range []struct {
		from, to string
		proto    string
		port     uint16
		want     bool
	}{
		{"web", "web", "udp", 9, true},
		{"web", "app", "tcp", 8080, true},
		{"web", "app", "udp", 8080, false},
		{"web", "app", "tcp", 8081, false},
		{"app", "web", "tcp", 8080, false},
		{"app", "db", "udp", 9, true},
		{"web", "db", "tcp", 5432, false},
		{"web", internet, "tcp", 443, true},
		{"app", internet, "tcp", 443, false},
		{"db", dnsServer, "udp", 53, true},
		{"default", internet, "tcp", 443, true},
		{"default", "web", "tcp", 80, false},
		{internet, "web", "tcp", 80, false},
	} {
		ref, kube := m.verdicts(t, c.from, c.to, c.proto, c.port)
		if ref != c.want || kube != c.want {
			t.Errorf("%s -> %s %s/%d: one host %v, Kubernetes %v, want %v", c.from, c.to, c.proto, c.port, ref, kube, c.want)
		}
	}
}

// Pseudo-segments: the Internet, and the DNS server (the gateway's on one host, the cluster
// DNS on Kubernetes).
const (
	internet  = "(internet)"
	dnsServer = "(dns)"
)

func readDocuments(t *testing.T, file string) render.Documents {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	objs, errs := load.File(file, data)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var docs render.Documents
	for _, o := range objs {
		switch v := o.Object.(type) {
		case *v1alpha1.Workload:
			docs.Workloads = append(docs.Workloads, *v)
		case *v1alpha1.Segment:
			docs.Segments = append(docs.Segments, *v)
		}
	}
	return docs
}

// matrix holds both sides for one set of documents.
type matrix struct {
	segments []string // every segment that exists: declared or used by a workload
	ref      *evaluator
	policy   Policy
	policies []networkingv1.NetworkPolicy
	ports    []uint16 // the ports worth trying: every port of a flow, and a few others
}

// newMatrix compiles the segments as the daemon does (internal/daemon's Enforce: declared
// segments with their spec, used ones defaulted) and renders them.
func newMatrix(t *testing.T, docs render.Documents) *matrix {
	t.Helper()
	declared := map[string]v1alpha1.SegmentSpec{}
	for _, s := range docs.Segments {
		s.SetDefaults()
		declared[s.Metadata.Name] = s.Spec
	}
	exists := map[string]bool{}
	for name := range declared {
		exists[name] = true
	}
	for _, w := range docs.Workloads {
		w.SetDefaults()
		exists[w.Spec.Segment] = true
	}
	m := &matrix{ports: []uint16{1, 53, 80, 65535}}
	for i, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range exists {
			if !yield(n) {
				return
			}
		}
	}) {
		m.segments = append(m.segments, name)
		spec, ok := declared[name]
		if !ok {
			spec = v1alpha1.SegmentSpec{Egress: v1alpha1.EgressAllow}
		}
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(i), 0}), 24)
		seg := Segment{Name: name, Bridge: fmt.Sprintf("st-s%d", i), Subnet: subnet, Gateway: subnet.Addr().Next(), Egress: spec.Egress != v1alpha1.EgressDeny}
		for _, a := range spec.Allow {
			al := Allow{From: a.From.Segment}
			for _, fp := range a.Ports {
				al.Ports = append(al.Ports, Port{Port: uint16(fp.Port), Protocol: string(fp.Protocol)})
				m.ports = append(m.ports, uint16(fp.Port))
			}
			seg.Allow = append(seg.Allow, al)
		}
		m.policy.Segments = append(m.policy.Segments, seg)
	}
	slices.Sort(m.ports)
	m.ports = slices.Compact(m.ports)
	r, err := Compile(m.policy)
	if err != nil {
		t.Fatal(err)
	}
	if m.ref, err = newEvaluator(r); err != nil {
		t.Fatal(err)
	}
	res, err := render.Render(docs, render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Objects {
		if np, ok := o.(*networkingv1.NetworkPolicy); ok {
			m.policies = append(m.policies, *np)
		}
	}
	return m
}

// compareMatrix compares every verdict and returns how many it compared.
func compareMatrix(t *testing.T, docs render.Documents) int {
	t.Helper()
	m := newMatrix(t, docs)
	n := 0
	ends := append([]string{internet}, m.segments...)
	for _, from := range ends {
		for _, to := range append(slices.Clone(ends), dnsServer) {
			if from == internet && (to == internet || to == dnsServer) {
				continue
			}
			for _, proto := range []string{"tcp", "udp"} {
				for _, port := range m.ports {
					if to == dnsServer && port != 53 {
						continue // the DNS server is only the DNS server on port 53
					}
					ref, kube := m.verdicts(t, from, to, proto, port)
					if ref != kube {
						t.Errorf("%s -> %s %s/%d: one host allows: %v, Kubernetes allows: %v", from, to, proto, port, ref, kube)
					}
					n++
				}
			}
		}
	}
	return n
}

// verdicts decides one connection on both sides.
func (m *matrix) verdicts(t *testing.T, from, to, proto string, port uint16) (ref, kube bool) {
	t.Helper()
	p := packet{hook: hookForward, proto: protocols[proto], sport: 40000, dport: port, ct: ctNew}
	c := netpol.Connection{From: m.endpoint(from), To: m.endpoint(to), Protocol: corev1.Protocol(strings.ToUpper(proto)), Port: int32(port)}
	src, dst := m.segment(from), m.segment(to)
	switch {
	case from == internet:
		p.iif, p.saddr = "eth0", netip.MustParseAddr("203.0.113.7")
	case src != nil:
		p.iif, p.saddr = src.Bridge, src.Gateway.Next()
	default:
		t.Fatalf("no segment %q", from)
	}
	switch {
	case to == internet:
		p.oif, p.daddr = "eth0", netip.MustParseAddr("203.0.113.9")
	case to == dnsServer: // the DNS server listens on the source segment's gateway
		p.hook, p.daddr, p.local = hookInput, src.Gateway, true
	case dst != nil:
		p.oif, p.daddr = dst.Bridge, dst.Gateway.Next().Next()
	default:
		t.Fatalf("no segment %q", to)
	}
	o, err := m.ref.run(p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	kube, err = netpol.Allowed(m.policies, c)
	if err != nil {
		t.Fatal(err)
	}
	return !o.drop, kube
}

func (m *matrix) segment(name string) *Segment {
	for i := range m.policy.Segments {
		if m.policy.Segments[i].Name == name {
			return &m.policy.Segments[i]
		}
	}
	return nil
}

// endpoint is a pod of a segment (labelled as render labels the pods of its workloads), the
// cluster's DNS server, or the Internet.
func (m *matrix) endpoint(name string) netpol.Endpoint {
	switch name {
	case internet:
		return netpol.External
	case dnsServer:
		return netpol.Endpoint{Pod: &netpol.Pod{Namespace: render.DNSNamespace, Labels: map[string]string{render.DNSLabel: render.DNSApp}}}
	}
	return netpol.Endpoint{Pod: &netpol.Pod{Namespace: render.DefaultNamespace, Labels: map[string]string{
		render.LabelSegment: name, render.LabelWorkload: "w-" + name, render.LabelTier: "container",
	}}}
}

// randDocuments is one to six segments with random egress and flows (from each other, from
// themselves, and from segments that do not exist), and workloads that use some of them and
// some undeclared ones.
func randDocuments(rng *rand.Rand) render.Documents {
	var docs render.Documents
	n := 1 + rng.IntN(6)
	name := func(i int) string { return fmt.Sprintf("s%d", i) }
	pickFrom := func() string {
		if rng.IntN(8) == 0 {
			return "ghost"
		}
		return name(rng.IntN(n + 1)) // s<n> is undeclared; a workload may use it
	}
	for i := range n {
		s := v1alpha1.Segment{Metadata: v1alpha1.ObjectMeta{Name: name(i)}}
		if rng.IntN(2) == 0 {
			s.Spec.Egress = v1alpha1.EgressDeny
		}
		for range rng.IntN(4) {
			a := v1alpha1.AllowRule{From: v1alpha1.SegmentRef{Segment: pickFrom()}}
			for range rng.IntN(3) {
				fp := v1alpha1.FlowPort{Port: []int32{53, 80, 443, 5432, 8080}[rng.IntN(5)]}
				if rng.IntN(2) == 0 {
					fp.Protocol = v1alpha1.ProtocolUDP
				}
				a.Ports = append(a.Ports, fp)
			}
			s.Spec.Allow = append(s.Spec.Allow, a)
		}
		docs.Segments = append(docs.Segments, s)
	}
	for i := range rng.IntN(4) {
		w := v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: fmt.Sprintf("w%d", i)}, Spec: v1alpha1.WorkloadSpec{Image: "x"}}
		if k := rng.IntN(n + 2); k <= n {
			w.Spec.Segment = name(k)
		} // else the default segment
		docs.Workloads = append(docs.Workloads, w)
	}
	return docs
}

func describeDocs(docs render.Documents) string {
	var b strings.Builder
	for _, s := range docs.Segments {
		fmt.Fprintf(&b, "\n  segment %s egress=%q allow=%+v", s.Metadata.Name, s.Spec.Egress, s.Spec.Allow)
	}
	for _, w := range docs.Workloads {
		fmt.Fprintf(&b, "\n  workload %s segment=%q", w.Metadata.Name, w.Spec.Segment)
	}
	return b.String()
}
