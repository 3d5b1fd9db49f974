package netpol

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func pod(ns string, kv ...string) Endpoint {
	return Endpoint{Pod: &Pod{Namespace: ns, Labels: sel(kv...).MatchLabels, NamedPorts: map[string]int32{"http": 8080}}}
}

func port(proto corev1.Protocol, p int32) networkingv1.NetworkPolicyPort {
	n := intstr.FromInt32(p)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &n}
}

func policy(ns string, pods *metav1.LabelSelector, types []networkingv1.PolicyType, in []networkingv1.NetworkPolicyIngressRule, out []networkingv1.NetworkPolicyEgressRule) networkingv1.NetworkPolicy {
	return networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: *pods, PolicyTypes: types, Ingress: in, Egress: out},
	}
}

var (
	ingress = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egress  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	both    = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	all     = &metav1.LabelSelector{}
)

// The cases follow the examples and rules of the Kubernetes documentation's page on
// network policies.
func TestAllowed(t *testing.T) {
	frontend, db := pod("prod", "role", "frontend"), pod("prod", "role", "db")
	other := pod("dev", "role", "frontend")
	other.Pod.NamespaceLabels = map[string]string{"project": "myproject"}
	tcp6379 := []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, 6379)}
	// The documentation's example, without its ipBlock: role=db pods admit, on TCP 6379, the
	// pods of namespaces labelled project=myproject and the role=frontend pods of their own.
	example := policy("prod", sel("role", "db"), ingress, []networkingv1.NetworkPolicyIngressRule{{
		From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("project", "myproject")}, {PodSelector: sel("role", "frontend")}},
		Ports: tcp6379,
	}}, nil)
	// "and": one peer with both selectors.
	and := policy("prod", sel("role", "db"), ingress, []networkingv1.NetworkPolicyIngressRule{{
		From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("project", "myproject"), PodSelector: sel("role", "admin")}},
	}}, nil)
	endPort := port(corev1.ProtocolTCP, 32000)
	end := int32(32768)
	endPort.EndPort = &end
	named := intstr.FromString("http")
	tests := []struct {
		name     string
		policies []networkingv1.NetworkPolicy
		c        Connection
		want     bool
	}{
		{"no policy: not isolated", nil, Connection{frontend, db, corev1.ProtocolTCP, 1}, true},
		{"default deny ingress", []networkingv1.NetworkPolicy{policy("prod", all, ingress, nil, nil)},
			Connection{frontend, db, corev1.ProtocolTCP, 80}, false},
		{"default deny ingress leaves egress alone", []networkingv1.NetworkPolicy{policy("prod", all, ingress, nil, nil)},
			Connection{frontend, External, corev1.ProtocolTCP, 80}, true},
		{"default deny egress", []networkingv1.NetworkPolicy{policy("prod", all, egress, nil, nil)},
			Connection{frontend, External, corev1.ProtocolTCP, 80}, false},
		{"default deny egress leaves ingress alone", []networkingv1.NetworkPolicy{policy("prod", all, egress, nil, nil)},
			Connection{External, db, corev1.ProtocolTCP, 80}, true},
		{"allow all ingress", []networkingv1.NetworkPolicy{policy("prod", all, ingress, []networkingv1.NetworkPolicyIngressRule{{}}, nil)},
			Connection{External, db, corev1.ProtocolUDP, 53}, true},
		{"policy of another namespace does not apply", []networkingv1.NetworkPolicy{policy("dev", all, ingress, nil, nil)},
			Connection{frontend, db, corev1.ProtocolTCP, 80}, true},
		{"example: frontend on 6379", []networkingv1.NetworkPolicy{example}, Connection{frontend, db, corev1.ProtocolTCP, 6379}, true},
		{"example: frontend on another port", []networkingv1.NetworkPolicy{example}, Connection{frontend, db, corev1.ProtocolTCP, 6380}, false},
		{"example: frontend on UDP 6379", []networkingv1.NetworkPolicy{example}, Connection{frontend, db, corev1.ProtocolUDP, 6379}, false},
		{"example: pods of myproject", []networkingv1.NetworkPolicy{example}, Connection{other, db, corev1.ProtocolTCP, 6379}, true},
		{"example: podSelector alone is the policy's namespace", []networkingv1.NetworkPolicy{example},
			Connection{pod("qa", "role", "frontend"), db, corev1.ProtocolTCP, 6379}, false},
		{"example: outside the cluster", []networkingv1.NetworkPolicy{example}, Connection{External, db, corev1.ProtocolTCP, 6379}, false},
		{"example: a pod it does not select", []networkingv1.NetworkPolicy{example}, Connection{db, frontend, corev1.ProtocolTCP, 1}, true},
		{"and: both selectors must match", []networkingv1.NetworkPolicy{and}, Connection{other, db, corev1.ProtocolTCP, 1}, false},
		{"and: both match", []networkingv1.NetworkPolicy{and},
			Connection{Endpoint{&Pod{Namespace: "dev", NamespaceLabels: map[string]string{"project": "myproject"}, Labels: map[string]string{"role": "admin"}}}, db, corev1.ProtocolTCP, 1}, true},
		{"namespace name label is implied", []networkingv1.NetworkPolicy{policy("prod", all, ingress, []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(LabelNamespaceName, "dev")}},
		}}, nil)}, Connection{other, db, corev1.ProtocolTCP, 1}, true},
		{"policies add up", []networkingv1.NetworkPolicy{
			policy("prod", all, ingress, []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, 80)}}}, nil),
			policy("prod", all, ingress, []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, 443)}}}, nil),
		}, Connection{External, db, corev1.ProtocolTCP, 443}, true},
		{"egress and ingress both needed", []networkingv1.NetworkPolicy{
			policy("prod", sel("role", "frontend"), egress, nil, []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("role", "db")}}}}),
			policy("prod", sel("role", "db"), ingress, nil, nil),
		}, Connection{frontend, db, corev1.ProtocolTCP, 5432}, false},
		{"egress to a pod", []networkingv1.NetworkPolicy{
			policy("prod", sel("role", "frontend"), egress, nil, []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("role", "db")}}}}),
		}, Connection{frontend, db, corev1.ProtocolTCP, 5432}, true},
		{"pod selectors match no external end", []networkingv1.NetworkPolicy{
			policy("prod", sel("role", "frontend"), egress, nil, []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: all}}}}),
		}, Connection{frontend, External, corev1.ProtocolTCP, 443}, false},
		{"no policyTypes: ingress only", []networkingv1.NetworkPolicy{policy("prod", all, nil, nil, nil)},
			Connection{frontend, External, corev1.ProtocolTCP, 443}, true},
		{"no policyTypes: egress when it has egress rules", []networkingv1.NetworkPolicy{policy("prod", all, nil, nil,
			[]networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolUDP, 53)}}})},
			Connection{frontend, External, corev1.ProtocolTCP, 443}, false},
		{"both types, egress rule admits", []networkingv1.NetworkPolicy{policy("prod", all, both, nil,
			[]networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolUDP, 53)}}})},
			Connection{frontend, External, corev1.ProtocolUDP, 53}, true},
		{"port range", []networkingv1.NetworkPolicy{policy("prod", all, ingress, []networkingv1.NetworkPolicyIngressRule{{
			Ports: []networkingv1.NetworkPolicyPort{endPort}}}, nil)}, Connection{External, db, corev1.ProtocolTCP, 32768}, true},
		{"beyond the port range", []networkingv1.NetworkPolicy{policy("prod", all, ingress, []networkingv1.NetworkPolicyIngressRule{{
			Ports: []networkingv1.NetworkPolicyPort{endPort}}}, nil)}, Connection{External, db, corev1.ProtocolTCP, 32769}, false},
		{"protocol defaults to TCP", []networkingv1.NetworkPolicy{policy("prod", all, ingress, []networkingv1.NetworkPolicyIngressRule{{
			Ports: []networkingv1.NetworkPolicyPort{{Port: &named}}}}, nil)}, Connection{External, db, corev1.ProtocolUDP, 8080}, false},
		{"named port", []networkingv1.NetworkPolicy{policy("prod", all, ingress, []networkingv1.NetworkPolicyIngressRule{{
			Ports: []networkingv1.NetworkPolicyPort{{Port: &named}}}}, nil)}, Connection{External, db, corev1.ProtocolTCP, 8080}, true},
		{"every port of a protocol", []networkingv1.NetworkPolicy{policy("prod", all, ingress, []networkingv1.NetworkPolicyIngressRule{{
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr(corev1.ProtocolUDP)}}}}, nil)}, Connection{External, db, corev1.ProtocolUDP, 9}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Allowed(tt.policies, tt.c)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Allowed = %v, want %v", got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestUnsupported(t *testing.T) {
	p := policy("prod", all, ingress, []networkingv1.NetworkPolicyIngressRule{{
		From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}}},
	}}, nil)
	_, err := Allowed([]networkingv1.NetworkPolicy{p}, Connection{External, pod("prod"), corev1.ProtocolTCP, 80})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("ipBlock: %v, want ErrUnsupported", err)
	}
	p = policy("prod", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Gt", Values: []string{"1"}}}}, ingress, nil, nil)
	if _, err := Allowed([]networkingv1.NetworkPolicy{p}, Connection{External, pod("prod"), corev1.ProtocolTCP, 80}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("operator Gt: %v, want ErrUnsupported", err)
	}
}

func TestMatches(t *testing.T) {
	labels := map[string]string{"tier": "web", "env": "prod"}
	expr := func(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
	}
	tests := []struct {
		name    string
		sel     *metav1.LabelSelector
		want    bool
		wantErr bool
	}{
		{"nil selects nothing", nil, false, false},
		{"empty selects everything", &metav1.LabelSelector{}, true, false},
		{"matchLabels", sel("tier", "web"), true, false},
		{"matchLabels all of them", sel("tier", "web", "env", "dev"), false, false},
		{"In", expr("env", metav1.LabelSelectorOpIn, "dev", "prod"), true, false},
		{"In, value not listed", expr("env", metav1.LabelSelectorOpIn, "dev"), false, false},
		{"In, key absent", expr("zone", metav1.LabelSelectorOpIn, "a"), false, false},
		{"NotIn", expr("env", metav1.LabelSelectorOpNotIn, "dev"), true, false},
		{"NotIn, value listed", expr("env", metav1.LabelSelectorOpNotIn, "prod"), false, false},
		{"NotIn, key absent", expr("zone", metav1.LabelSelectorOpNotIn, "a"), true, false},
		{"Exists", expr("tier", metav1.LabelSelectorOpExists), true, false},
		{"Exists, absent", expr("zone", metav1.LabelSelectorOpExists), false, false},
		{"DoesNotExist", expr("zone", metav1.LabelSelectorOpDoesNotExist), true, false},
		{"DoesNotExist, present", expr("tier", metav1.LabelSelectorOpDoesNotExist), false, false},
		{"labels and expressions together", &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web"},
			MatchExpressions: expr("env", metav1.LabelSelectorOpIn, "dev").MatchExpressions}, false, false},
		{"In without values", expr("env", metav1.LabelSelectorOpIn), false, true},
		{"Exists with values", expr("env", metav1.LabelSelectorOpExists, "x"), false, true},
		{"unknown operator", expr("env", "Gt", "1"), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Matches(tt.sel, labels)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Matches = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
