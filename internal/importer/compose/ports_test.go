package compose

import (
	"reflect"
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

func TestParsePorts(t *testing.T) {
	tcp, udp := v1alpha1.ProtocolTCP, v1alpha1.ProtocolUDP
	tests := []struct {
		in   string
		want []v1alpha1.Port
		ok   bool
	}{
		{"80", []v1alpha1.Port{{Port: 80, Protocol: tcp}}, true},
		{"8080:80", []v1alpha1.Port{{Port: 80, Protocol: tcp, Publish: 8080}}, true},
		{"127.0.0.1:8080:80", []v1alpha1.Port{{Port: 80, Protocol: tcp, Publish: 8080}}, true},
		{"127.0.0.1::80", []v1alpha1.Port{{Port: 80, Protocol: tcp}}, true},
		{"[::1]:8080:80", []v1alpha1.Port{{Port: 80, Protocol: tcp, Publish: 8080}}, true},
		{"::1:8080:80", []v1alpha1.Port{{Port: 80, Protocol: tcp, Publish: 8080}}, true},
		{"8080:80/udp", []v1alpha1.Port{{Port: 80, Protocol: udp, Publish: 8080}}, true},
		{"53/UDP", []v1alpha1.Port{{Port: 53, Protocol: udp}}, true},
		{"9000-9001:9000-9001", []v1alpha1.Port{{Port: 9000, Protocol: tcp, Publish: 9000}, {Port: 9001, Protocol: tcp, Publish: 9001}}, true},
		{"9000-9001", []v1alpha1.Port{{Port: 9000, Protocol: tcp}, {Port: 9001, Protocol: tcp}}, true},
		{"8000-8010:80", []v1alpha1.Port{{Port: 80, Protocol: tcp, Publish: 8000}}, true},
		{"1-100", nil, true},
		{"1-101", nil, false},
		{"8080:80-81", nil, false},
		{"8080-8082:80-81", nil, false},
		{"81-80", nil, false},
		{"0", nil, false},
		{"65536", nil, false},
		{"http", nil, false},
		{"80/sctp", nil, false},
		{"[::1:80:80", nil, false},
		{"[::1]", nil, false},
		{"", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parsePorts(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("parsePorts(%q) error %v, want ok %v", tt.in, err, tt.ok)
			}
			if tt.ok && tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parsePorts(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
	if got, _ := parsePorts("1-100"); len(got) != 100 {
		t.Errorf("1-100 expands to %d ports, want 100", len(got))
	}
}

func TestPorts(t *testing.T) {
	tcp, udp := v1alpha1.ProtocolTCP, v1alpha1.ProtocolUDP
	tests := []struct {
		name string
		body string
		want []v1alpha1.Port
	}{
		{"short", `ports: ["8080:80", 443, "53:53/udp"]`,
			[]v1alpha1.Port{{Port: 80, Protocol: tcp, Publish: 8080}, {Port: 443, Protocol: tcp}, {Port: 53, Protocol: udp, Publish: 53}}},
		{"long", "ports:\n- {target: 80, published: 8080, protocol: tcp, mode: host}\n- {target: '81', published: '9000-9010'}\n- target: 82",
			[]v1alpha1.Port{{Port: 80, Protocol: tcp, Publish: 8080}, {Port: 81, Protocol: tcp, Publish: 9000}, {Port: 82, Protocol: tcp}}},
		{"same port on two addresses", `ports: ["127.0.0.1:8080:80", "[::1]:8080:80"]`,
			[]v1alpha1.Port{{Port: 80, Protocol: tcp, Publish: 8080}}},
		{"exposed then published", "expose: [80]\nports: [\"8080:80\"]",
			[]v1alpha1.Port{{Port: 80, Protocol: tcp, Publish: 8080}}},
		{"expose", `expose: ["3000", "4000-4001", 53/udp]`,
			[]v1alpha1.Port{{Port: 3000, Protocol: tcp}, {Port: 4000, Protocol: tcp}, {Port: 4001, Protocol: tcp}, {Port: 53, Protocol: udp}}},
		{"tcp and udp", `ports: ["53:53", "53:53/udp"]`,
			[]v1alpha1.Port{{Port: 53, Protocol: tcp, Publish: 53}, {Port: 53, Protocol: udp, Publish: 53}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := service(t, "image: x\n"+tt.body).Spec.Ports; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ports:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
