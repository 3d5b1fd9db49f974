package render

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"strata.dev/strata/api/v1alpha1"
)

// Where the cluster's DNS runs: the pods labelled k8s-app=kube-dns in namespace kube-system
// (CoreDNS keeps the label), on port 53 of UDP and TCP.
const (
	DNSNamespace = "kube-system"
	DNSLabel     = "k8s-app"
	DNSApp       = "kube-dns"
	dnsPort      = 53
	// LabelNamespaceName is the label Kubernetes gives every namespace: its name.
	LabelNamespaceName = "kubernetes.io/metadata.name"
)

// PolicyName is the name of segment's NetworkPolicy.
func PolicyName(segment string) string { return "segment-" + segment }

// flow is an allowed flow out of a segment: to the pods of segment to, on ports (every port
// of every protocol when there are none).
type flow struct {
	to    string
	ports []v1alpha1.FlowPort
}

// segments renders one NetworkPolicy per segment: the declared ones, and the ones workloads
// use without a declaration, defaulted (egress allow, no flows in) as the daemon has them.
func (r *renderer) segments(declared []v1alpha1.Segment) {
	all := map[string]v1alpha1.Segment{}
	for name := range r.used {
		s := v1alpha1.Segment{Metadata: v1alpha1.ObjectMeta{Name: name}}
		s.SetDefaults()
		all[name] = s
	}
	for _, s := range declared {
		all[s.Metadata.Name] = s
	}
	out := map[string][]flow{}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		for _, a := range all[name].Spec.Allow {
			out[a.From.Segment] = append(out[a.From.Segment], flow{to: name, ports: a.Ports})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		s := all[name]
		r.add(segmentPolicy(&s, out[name], r.opts.Namespace))
	}
}

// segmentPolicy isolates the pods of s: in, only s itself and its allow flows; out,
// everything (egress allow) or only s itself, the flows out of s and the cluster DNS.
func segmentPolicy(s *v1alpha1.Segment, out []flow, namespace string) *networkingv1.NetworkPolicy {
	name := s.Metadata.Name
	spec := networkingv1.NetworkPolicySpec{
		PodSelector: *segmentSelector(name),
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: segmentPeer(name)}},
	}
	for _, a := range s.Spec.Allow {
		spec.Ingress = append(spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: segmentPeer(a.From.Segment), Ports: flowPorts(a.Ports)})
	}
	if s.Spec.Egress == v1alpha1.EgressAllow {
		spec.Egress = []networkingv1.NetworkPolicyEgressRule{{}} // an empty rule admits everything
	} else {
		spec.Egress = []networkingv1.NetworkPolicyEgressRule{{To: segmentPeer(name)}}
		for _, f := range out {
			spec.Egress = append(spec.Egress, networkingv1.NetworkPolicyEgressRule{To: segmentPeer(f.to), Ports: flowPorts(f.ports)})
		}
		spec.Egress = append(spec.Egress, dnsRule())
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   typeMeta("networking.k8s.io/v1", "NetworkPolicy"),
		ObjectMeta: objectMeta(PolicyName(name), namespace, segmentLabels(name)),
		Spec:       spec,
	}
}

func segmentSelector(segment string) *metav1.LabelSelector {
	return labelSelector(map[string]string{LabelSegment: segment})
}

// segmentPeer is the pods of segment, in the policy's namespace.
func segmentPeer(segment string) []networkingv1.NetworkPolicyPeer {
	return []networkingv1.NetworkPolicyPeer{{PodSelector: segmentSelector(segment)}}
}

func flowPorts(ports []v1alpha1.FlowPort) []networkingv1.NetworkPolicyPort {
	var out []networkingv1.NetworkPolicyPort
	for _, p := range ports {
		proto, port := protocol(p.Protocol), intstr.FromInt32(p.Port)
		out = append(out, networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &port})
	}
	return out
}

// dnsRule admits name lookups to the cluster's DNS, as a segment without egress still
// reaches the DNS server on its gateway on one host.
func dnsRule() networkingv1.NetworkPolicyEgressRule {
	udp, tcp, port := corev1.ProtocolUDP, corev1.ProtocolTCP, intstr.FromInt32(dnsPort)
	return networkingv1.NetworkPolicyEgressRule{
		To: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: labelSelector(map[string]string{LabelNamespaceName: DNSNamespace}),
			PodSelector:       labelSelector(map[string]string{DNSLabel: DNSApp}),
		}},
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &port}, {Protocol: &tcp, Port: &port}},
	}
}
