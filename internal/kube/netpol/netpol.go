// Package netpol decides whether Kubernetes NetworkPolicies (networking.k8s.io/v1) allow a
// connection, following the semantics the Kubernetes documentation gives them. strata uses it
// to check that the policies it renders for segments mean what its single-host firewall
// enforces.
//
// # Semantics
//
//   - A pod is isolated for ingress when some policy in its namespace selects it (by the
//     policy's podSelector) and has Ingress among its policyTypes; likewise for egress.
//     policyTypes left empty means Ingress, plus Egress when the policy has egress rules.
//   - A connection from A to B is allowed when A's egress allows it and B's ingress allows
//     it. A side that is not isolated allows everything; an isolated side allows what some
//     rule of some policy selecting it admits. Policies only add: none denies.
//   - A rule admits a connection when one of its peers matches the other end (no peers: any
//     end) and one of its ports matches the destination port and protocol (no ports: every
//     port of every protocol).
//   - A peer with only a podSelector matches pods of the policy's own namespace; with only a
//     namespaceSelector, every pod of the namespaces it selects; with both, the pods it
//     selects in the namespaces it selects. An empty selector selects everything.
//   - Replies of an allowed connection always pass; a Connection is the opening packet.
//
// Endpoints outside the cluster (the Internet) have no policies and match no pod peer.
// What the package does not know (ipBlock peers, a selector operator other than In, NotIn,
// Exists and DoesNotExist) is an error, never a guess.
package netpol

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// ErrUnsupported marks a policy that uses something this package does not evaluate.
var ErrUnsupported = errors.New("not supported by the evaluator")

// Pod is one end of a connection inside the cluster.
type Pod struct {
	Namespace string
	// NamespaceLabels are the labels of the pod's namespace; namespaceSelectors match them.
	// Kubernetes sets kubernetes.io/metadata.name to the namespace's name on every namespace;
	// the evaluator does too when it is missing.
	NamespaceLabels map[string]string
	Labels          map[string]string
	// NamedPorts are the pod's container ports by name, for policies that name ports.
	NamedPorts map[string]int32
}

// Endpoint is a pod, or (Pod nil) something outside the cluster.
type Endpoint struct {
	Pod *Pod
}

// External is an endpoint outside the cluster.
var External = Endpoint{}

// Connection is the opening packet of a connection: from, to, and the destination port.
type Connection struct {
	From, To Endpoint
	Protocol corev1.Protocol // TCP, UDP or SCTP
	Port     int32
}

// Allowed reports whether policies allow c: its source's egress and its destination's
// ingress. The policies are every policy of every namespace; each applies in its own.
func Allowed(policies []networkingv1.NetworkPolicy, c Connection) (bool, error) {
	out, err := side(policies, c.From, c, networkingv1.PolicyTypeEgress)
	if err != nil || !out {
		return false, err
	}
	return side(policies, c.To, c, networkingv1.PolicyTypeIngress)
}

// side decides one end: the egress of the source or the ingress of the destination.
func side(policies []networkingv1.NetworkPolicy, end Endpoint, c Connection, dir networkingv1.PolicyType) (bool, error) {
	if end.Pod == nil {
		return true, nil // no policy applies outside the cluster
	}
	isolated := false
	for i := range policies {
		p := &policies[i]
		if p.Namespace != end.Pod.Namespace || !hasType(p, dir) {
			continue
		}
		selected, err := Matches(&p.Spec.PodSelector, end.Pod.Labels)
		if err != nil {
			return false, fmt.Errorf("policy %s/%s: podSelector: %w", p.Namespace, p.Name, err)
		}
		if !selected {
			continue
		}
		isolated = true
		ok, err := admits(p, c, dir)
		if err != nil {
			return false, fmt.Errorf("policy %s/%s: %w", p.Namespace, p.Name, err)
		}
		if ok {
			return true, nil
		}
	}
	return !isolated, nil
}

// hasType reports whether p applies to direction dir, with Kubernetes' default for
// policies that list no policyTypes.
func hasType(p *networkingv1.NetworkPolicy, dir networkingv1.PolicyType) bool {
	if len(p.Spec.PolicyTypes) == 0 {
		return dir == networkingv1.PolicyTypeIngress || len(p.Spec.Egress) > 0
	}
	for _, t := range p.Spec.PolicyTypes {
		if t == dir {
			return true
		}
	}
	return false
}

// admits reports whether one of p's rules for dir admits c.
func admits(p *networkingv1.NetworkPolicy, c Connection, dir networkingv1.PolicyType) (bool, error) {
	type rule struct {
		peers []networkingv1.NetworkPolicyPeer
		ports []networkingv1.NetworkPolicyPort
	}
	var rules []rule
	peer := c.To // the other end
	if dir == networkingv1.PolicyTypeIngress {
		peer = c.From
		for _, r := range p.Spec.Ingress {
			rules = append(rules, rule{r.From, r.Ports})
		}
	} else {
		for _, r := range p.Spec.Egress {
			rules = append(rules, rule{r.To, r.Ports})
		}
	}
	for i, r := range rules {
		where := fmt.Sprintf("%s[%d]", map[networkingv1.PolicyType]string{networkingv1.PolicyTypeIngress: "ingress", networkingv1.PolicyTypeEgress: "egress"}[dir], i)
		okPeer, err := anyPeer(r.peers, p.Namespace, peer)
		if err != nil {
			return false, fmt.Errorf("%s: %w", where, err)
		}
		okPort, err := anyPort(r.ports, c)
		if err != nil {
			return false, fmt.Errorf("%s: %w", where, err)
		}
		if okPeer && okPort {
			return true, nil
		}
	}
	return false, nil
}

// anyPeer reports whether one of peers (none: anything) matches end, for a policy of
// namespace ns.
func anyPeer(peers []networkingv1.NetworkPolicyPeer, ns string, end Endpoint) (bool, error) {
	if len(peers) == 0 {
		return true, nil
	}
	for j, peer := range peers {
		if peer.IPBlock != nil {
			return false, fmt.Errorf("peers[%d]: ipBlock: %w", j, ErrUnsupported)
		}
		if peer.PodSelector == nil && peer.NamespaceSelector == nil {
			return false, fmt.Errorf("peers[%d]: a peer needs a podSelector, a namespaceSelector or an ipBlock", j)
		}
		if end.Pod == nil {
			continue // pod and namespace selectors match pods only
		}
		ok, err := peerMatches(peer, ns, end.Pod)
		if err != nil {
			return false, fmt.Errorf("peers[%d]: %w", j, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

func peerMatches(peer networkingv1.NetworkPolicyPeer, ns string, pod *Pod) (bool, error) {
	if peer.NamespaceSelector == nil {
		if pod.Namespace != ns {
			return false, nil
		}
	} else {
		ok, err := Matches(peer.NamespaceSelector, namespaceLabels(pod))
		if err != nil || !ok {
			return false, err
		}
	}
	if peer.PodSelector == nil {
		return true, nil
	}
	return Matches(peer.PodSelector, pod.Labels)
}

// namespaceLabels are the labels of pod's namespace, with the name label Kubernetes always sets.
func namespaceLabels(pod *Pod) map[string]string {
	l := make(map[string]string, len(pod.NamespaceLabels)+1)
	for k, v := range pod.NamespaceLabels {
		l[k] = v
	}
	if _, ok := l[LabelNamespaceName]; !ok {
		l[LabelNamespaceName] = pod.Namespace
	}
	return l
}

// LabelNamespaceName is the label Kubernetes gives every namespace: its name.
const LabelNamespaceName = "kubernetes.io/metadata.name"

// anyPort reports whether one of ports (none: every port of every protocol) matches the
// destination of c.
func anyPort(ports []networkingv1.NetworkPolicyPort, c Connection) (bool, error) {
	if len(ports) == 0 {
		return true, nil
	}
	for _, p := range ports {
		proto := corev1.ProtocolTCP // the default of a policy port
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if proto != c.Protocol {
			continue
		}
		if p.Port == nil {
			return true, nil // every port of the protocol
		}
		lo := p.Port.IntVal
		if p.Port.Type != 0 { // a named port: the destination pod's port of that name
			if c.To.Pod == nil {
				continue
			}
			n, ok := c.To.Pod.NamedPorts[p.Port.StrVal]
			if !ok {
				continue
			}
			if p.EndPort != nil {
				return false, fmt.Errorf("port %q with endPort: a range must start at a number", p.Port.StrVal)
			}
			lo = n
		}
		hi := lo
		if p.EndPort != nil {
			hi = *p.EndPort
		}
		if lo <= c.Port && c.Port <= hi {
			return true, nil
		}
	}
	return false, nil
}
