package load

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"strata.dev/strata/api/v1alpha1"
)

func TestFileValid(t *testing.T) {
	src := `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: payments, labels: {strata.dev/tenant: shop}}
spec:
  image: localhost/shop/payments:1.4
  resources: {cpu: "1", memory: 512Mi}
  replicas: 2
  ports: [{name: http, port: 8080, publish: 18080}]
  health: {http: {path: /healthz, port: 8080}}
  traits:
    osVersion: 22.04
    data: confidential
---
# an empty document is skipped
---
{"apiVersion": "strata.dev/v1alpha1", "kind": "Segment", "metadata": {"name": "payments"},
 "spec": {"subnet": "10.213.4.0/24", "allow": [{"from": {"segment": "web"}, "ports": [{"port": 8080}]}]}}
`
	objs, errs := File("app.yaml", []byte(src))
	if len(errs) > 0 {
		t.Fatalf("unexpected errors:\n%v", errs)
	}
	if len(objs) != 2 {
		t.Fatalf("got %d objects, want 2", len(objs))
	}
	w := objs[0].Object.(*v1alpha1.Workload)
	if got := w.Spec.Traits.OSVersion; got != "22.04" {
		t.Errorf("osVersion = %q, want the text as written, 22.04", got)
	}
	if got := w.Spec.Resources.Memory.String(); got != "512Mi" {
		t.Errorf("memory = %s, want 512Mi", got)
	}
	if w.Spec.ReplicaCount() != 2 || w.Spec.Segment != "default" || w.Spec.Isolation != v1alpha1.IsolationAuto {
		t.Errorf("replicas/segment/isolation = %d/%s/%s, want 2/default/auto", w.Spec.ReplicaCount(), w.Spec.Segment, w.Spec.Isolation)
	}
	if w.Spec.Ports[0].Protocol != v1alpha1.ProtocolTCP || w.Spec.Health.FailureThreshold != 3 {
		t.Errorf("defaults not applied: protocol %q, failureThreshold %d", w.Spec.Ports[0].Protocol, w.Spec.Health.FailureThreshold)
	}
	if objs[1].Doc.Line != 16 || objs[1].Doc.Index != 2 {
		t.Errorf("segment at line %d index %d, want line 16 index 2", objs[1].Doc.Line, objs[1].Doc.Index)
	}
	s := objs[1].Object.(*v1alpha1.Segment)
	if s.Spec.Egress != v1alpha1.EgressAllow || s.Spec.Allow[0].Ports[0].Protocol != v1alpha1.ProtocolTCP {
		t.Errorf("segment defaults not applied: %+v", s.Spec)
	}
}

const head = "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: web}\n"

// TestFileErrors covers every class of error: each case's input must give exactly these lines.
func TestFileErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"syntax in a block", "apiVersion: strata.dev/v1alpha1\nkind: Workload\n  metadata: {}\n",
			[]string{"f.yaml:3: syntax error: mapping values are not allowed in this context (fix the YAML or JSON syntax; a document must be a mapping of fields)"}},
		{"syntax", "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: web\n",
			[]string{"f.yaml:3: syntax error: did not find expected ',' or '}' (fix the YAML or JSON syntax; a document must be a mapping of fields)"}},
		{"unknown field", head + "spec:\n  imagee: x\n",
			[]string{`f.yaml:5:3: spec.imagee: unknown field "imagee" (did you mean "image"?)`}},
		{"unknown field far from any", head + "spec:\n  zzzzzzzzzzzz: x\n",
			[]string{`f.yaml:5:3: spec.zzzzzzzzzzzz: unknown field "zzzzzzzzzzzz" (known fields: backup, command, env, health, image, isolation, placement, ports, replicas, resources, restartPolicy, scaling, segment, traits, vm, volumes)`}},
		{"field twice", head + "spec:\n  image: a\n  image: b\n",
			[]string{`f.yaml:6:3: spec.image: field "image" is given twice (keep one of them)`}},
		{"wrong type", head + "spec:\n  replicas: two\n  command: /bin/x\n  traits: {privileged: maybe}\n",
			[]string{
				`f.yaml:5:13: spec.replicas: expected an integer, got the string "two"`,
				`f.yaml:6:12: spec.command: expected a list, got the string "/bin/x" (write a YAML list, one item per line starting with '- ')`,
				`f.yaml:7:24: spec.traits.privileged: expected true or false, got the string "maybe"`,
			}},
		{"quoted integer", head + "spec:\n  replicas: \"2\"\n",
			[]string{`f.yaml:5:13: spec.replicas: expected an integer, got the string "2" (remove the quotes)`}},
		{"integer range", head + "spec:\n  ports: [{port: 99999999999}]\n",
			[]string{`f.yaml:5:18: spec.ports[0].port: integer 99999999999 is out of range (the field holds a 32-bit integer)`}},
		{"bad quantity", head + "spec:\n  resources: {cpu: 2 cores, memory: 1GB}\n",
			[]string{
				`f.yaml:5:20: spec.resources.cpu: invalid quantity "2 cores" (write a number or a Kubernetes quantity such as 500m, 1.5 or 2Gi)`,
				`f.yaml:5:37: spec.resources.memory: invalid quantity "1GB" (write a number or a Kubernetes quantity such as 500m, 1.5 or 2Gi)`,
			}},
		{"zero quantity", head + "spec:\n  resources: {disk: 0}\n",
			[]string{`f.yaml:5:21: spec.resources.disk: invalid value "0" (must be greater than zero)`}},
		{"bad name", "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: Web_1}\n",
			[]string{`f.yaml:3:18: metadata.name: invalid value "Web_1" (use a DNS label: at most 63 lower case letters, digits and '-', starting and ending with a letter or digit, such as payments-1)`}},
		{"missing name", "apiVersion: strata.dev/v1alpha1\nkind: Workload\nspec: {}\n",
			[]string{`f.yaml:1:1: metadata.name: required value (give the object a name (a DNS label such as web-1))`}},
		{"bad enum", head + "spec:\n  isolation: kvm\n  traits: {hostAccess: [network, kernel]}\n",
			[]string{
				`f.yaml:5:14: spec.isolation: unsupported value "kvm" (use one of "auto", "container", "sandbox", "vm")`,
				`f.yaml:6:34: spec.traits.hostAccess[1]: unsupported value "kernel" (use one of "network", "pid", "ipc", "devices", "paths", "user", "uts", "cgroup")`,
			}},
		{"bad node VM mode", head + "spec:\n  image: x\n  placement: {spread: host, nodeVM: always}\n",
			[]string{`f.yaml:6:37: spec.placement.nodeVM: invalid value "always" (use "required" (inside node VMs) or "never" (on the host's kernel), or leave it out to let the policy decide)`}},
		{"node VM mode in capitals", head + "spec:\n  image: x\n  placement:\n    nodeVM: Required\n",
			[]string{`f.yaml:7:13: spec.placement.nodeVM: invalid value "Required" (use "required" (inside node VMs) or "never" (on the host's kernel), or leave it out to let the policy decide)`}},
		{"node VM mode as a bool", head + "spec:\n  image: x\n  placement: {nodeVM: true}\n",
			[]string{`f.yaml:6:23: spec.placement.nodeVM: invalid value "true" (use "required" (inside node VMs) or "never" (on the host's kernel), or leave it out to let the policy decide)`}},
		{"node VM mode as a list", head + "spec:\n  image: x\n  placement: {nodeVM: [required]}\n",
			[]string{`f.yaml:6:23: spec.placement.nodeVM: expected a string, got a list`}},
		{"node VM misspelt", head + "spec:\n  image: x\n  placement: {nodeVMs: never}\n",
			[]string{`f.yaml:6:15: spec.placement.nodeVMs: unknown field "nodeVMs" (did you mean "nodeVM"?)`}},
		{"bad value", head + "spec:\n  image: x\n  ports:\n  - {port: 80}\n  - {port: 80, publish: 70000}\n",
			[]string{
				`f.yaml:8:12: spec.ports[1].port: duplicate value "80/tcp" (each must be unique)`,
				`f.yaml:8:25: spec.ports[1].publish: invalid value "70000" (must be a port number between 1 and 65535)`,
			}},
		{"needs image", head + "spec:\n  isolation: sandbox\n",
			[]string{`f.yaml:5:3: spec.image: required value (the sandbox tier runs an OCI image: set spec.image, or use isolation auto or vm)`}},
		{"wrong apiVersion", "apiVersion: strata.dev/v2\nkind: Workload\n",
			[]string{`f.yaml:1:13: apiVersion: unsupported apiVersion "strata.dev/v2" (use apiVersion: strata.dev/v1alpha1)`}},
		{"unknown kind", "apiVersion: strata.dev/v1alpha1\nkind: Workloads\n",
			[]string{`f.yaml:2:7: kind: unknown kind "Workloads" (use one of Workload, Segment, Fleet, AssessmentPolicy)`}},
		{"not a mapping", "- a\n- b\n",
			[]string{`f.yaml:1:1: a document must be a mapping of fields (start it with apiVersion: and kind:)`}},
		{"segment", "apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: db}\nspec:\n  subnet: 10.213.4.1/24\n  allow: [{from: {}, ports: [{port: 0, protocol: sctp}]}]\n",
			[]string{
				`f.yaml:5:11: spec.subnet: invalid value "10.213.4.1/24" (has host bits set: use 10.213.4.0/24)`,
				`f.yaml:6:18: spec.allow[0].from.segment: required value (name the segment the traffic comes from)`,
				`f.yaml:6:37: spec.allow[0].ports[0].port: invalid value "0" (must be a port number between 1 and 65535)`,
				`f.yaml:6:50: spec.allow[0].ports[0].protocol: unsupported value "sctp" (use one of "tcp", "udp")`,
			}},
		{"reserved subnets", "apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: lo}\nspec: {subnet: 127.0.4.0/24}\n" +
			"---\napiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: ll}\nspec: {subnet: 169.254.0.0/16}\n" +
			"---\napiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: mc}\nspec: {subnet: 224.0.0.0/24}\n" +
			"---\napiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: doc}\nspec: {subnet: 192.0.0.0/16}\n",
			[]string{
				`f.yaml:4:16: spec.subnet: invalid value "127.0.4.0/24" (overlaps 127.0.0.0/8 (loopback), which cannot be a segment: use a private range such as 10.213.4.0/24, or leave it empty to get one from the pool)`,
				`f.yaml:9:16: spec.subnet: invalid value "169.254.0.0/16" (overlaps 169.254.0.0/16 (link-local), which cannot be a segment: use a private range such as 10.213.4.0/24, or leave it empty to get one from the pool)`,
				`f.yaml:14:16: spec.subnet: invalid value "224.0.0.0/24" (overlaps 224.0.0.0/4 (multicast), which cannot be a segment: use a private range such as 10.213.4.0/24, or leave it empty to get one from the pool)`,
				`f.yaml:19:16: spec.subnet: invalid value "192.0.0.0/16" (overlaps 192.0.0.0/24 (IETF protocol assignments), which cannot be a segment: use a private range such as 10.213.4.0/24, or leave it empty to get one from the pool)`,
			}},
		{"fleet", "apiVersion: strata.dev/v1alpha1\nkind: Fleet\nmetadata: {name: dc1}\nspec:\n  hostPools: [{prefix: h, count: 0, capacity: {cpu: 64, memory: 0}}]\n",
			[]string{
				`f.yaml:5:34: spec.hostPools[0].count: invalid value "0" (must be between 1 and 100000)`,
				`f.yaml:5:65: spec.hostPools[0].capacity.memory: invalid value "0" (must be greater than zero)`,
			}},
		{"aliases are followed", head + "x: &a [1, 2]\n",
			[]string{`f.yaml:4:1: x: unknown field "x" (known fields: apiVersion, kind, metadata, spec, status)`}},
		{"merge keys", head + "spec:\n  <<: {image: x}\n",
			[]string{`f.yaml:5:3: spec: merge keys (<<) are not supported (write the fields out)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, errs := File("f.yaml", []byte(tt.src))
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if len(objs) != 0 {
				t.Errorf("an invalid document gave %d objects", len(objs))
			}
		})
	}
}

// TestAllErrorsOfAFile checks that problems in several documents are all reported, in order.
func TestAllErrorsOfAFile(t *testing.T) {
	src := head + "spec: {replicas: -1}\n---\n" + head + "spec: {segment: A}\n"
	_, errs := File("f.yaml", []byte(src))
	if len(errs) != 2 || errs[0].Line != 4 || errs[1].Line != 9 {
		t.Fatalf("got %v, want two errors at lines 4 and 9", errs)
	}
}

func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(head + "spec:\n  env:\n")
	b.WriteString("x0: &x0 [a, a, a, a, a, a, a, a, a, a]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("x")
		b.WriteString(string(rune('0' + i)))
		b.WriteString(": &x" + string(rune('0'+i)) + " [*x" + string(rune('0'+i-1)) + ", *x" + string(rune('0'+i-1)) + ", *x" + string(rune('0'+i-1)) + ", *x" + string(rune('0'+i-1)) + ", *x" + string(rune('0'+i-1)) + ", *x" + string(rune('0'+i-1)) + ", *x" + string(rune('0'+i-1)) + ", *x" + string(rune('0'+i-1)) + ", *x" + string(rune('0'+i-1)) + ", *x" + string(rune('0'+i-1)) + "]\n")
	}
	docs, errs := Documents("bomb.yaml", []byte(b.String()))
	if len(errs) > 0 {
		t.Skipf("the YAML parser refuses the document itself: %v", errs)
	}
	for _, d := range docs {
		if _, derrs := Generic("bomb.yaml", d.Node); len(derrs) == 0 {
			t.Fatal("a document expanding to 10^9 values decoded without error")
		}
	}
}

// TestStream reads documents one at a time: empty ones are skipped, each keeps its index
// in the stream, and a syntax error ends the stream after the documents before it.
func TestStream(t *testing.T) {
	src := "apiVersion: v1\nkind: Service\n---\n---\n# only a comment\n---\nkind: Pod\n---\na: [1, 2\n---\nkind: Never\n"
	s := NewStream("s.yaml", strings.NewReader(src))
	var got []string
	for {
		doc, ok := s.Next()
		if !ok {
			break
		}
		got = append(got, fmt.Sprintf("%d:%s@%d", doc.Index, doc.Kind, doc.Line))
	}
	if want := []string{"0:Service@1", "3:Pod@7"}; !slices.Equal(got, want) {
		t.Errorf("documents %q, want %q", got, want)
	}
	err := s.Err()
	if err == nil || err.File != "s.yaml" || err.Line != 9 {
		t.Fatalf("error %v, want a syntax error at s.yaml:9", err)
	}
	if _, ok := s.Next(); ok {
		t.Error("the stream goes on after a syntax error")
	}
	docs, errs := Documents("s.yaml", []byte(src))
	if len(docs) != 2 || len(errs) != 1 || errs[0].Error() != err.Error() {
		t.Errorf("Documents gives %d documents and %v, want the stream's", len(docs), errs)
	}
}

// looseTarget has the shapes Kubernetes objects have: nested lists of structs, maps of
// quantities, int-or-string values and times.
type looseTarget struct {
	Spec struct {
		Replicas *int32 `json:"replicas"`
		Volumes  []struct {
			Name string `json:"name"`
			FC   *struct {
				Lun *int32 `json:"lun"`
			} `json:"fc"`
		} `json:"volumes"`
		Limits map[string]resource.Quantity `json:"limits"`
		Port   intstr.IntOrString           `json:"port"`
		Since  *metav1.Time                 `json:"since"`
		Paused bool                         `json:"paused"`
	} `json:"spec"`
}

// TestLooseErrors checks that Loose reports every value that does not fit at its own line
// and column, with its path and list indexes, ignores unknown fields and decodes the rest.
func TestLooseErrors(t *testing.T) {
	src := `kind: Thing
spec:
  unknown: {ignored: true}
  replicas: 2
  volumes:
  - name: ok
    fc: {lun: 1}
  - name: bad
    fc: {lun: first}
  limits: {cpu: 2, memory: 1GB}
  port: {number: 80}
  since: yesterday
  paused: "no"
`
	docs, errs := Documents("l.yaml", []byte(src))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var out looseTarget
	errs = Loose(docs[0], &out)
	var got []string
	for _, e := range errs {
		got = append(got, fmt.Sprintf("%d:%d %s: %s", e.Line, e.Col, e.Path, e.Msg))
	}
	want := []string{
		`9:15 spec.volumes[1].fc.lun: expected an integer, got the string "first"`,
		`10:28 spec.limits[memory]: invalid quantity "1GB"`,
		`11:9 spec.port: expected an integer or a string, got a mapping`,
		`12:10 spec.since: expected an RFC 3339 time such as 2026-01-02T15:04:05Z, got the string "yesterday"`,
		`13:11 spec.paused: expected true or false, got the string "no"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
	cpu := out.Spec.Limits["cpu"]
	if out.Spec.Replicas == nil || *out.Spec.Replicas != 2 || len(out.Spec.Volumes) != 2 ||
		*out.Spec.Volumes[0].FC.Lun != 1 || cpu.Cmp(resource.MustParse("2")) != 0 {
		t.Errorf("the values that fit were not decoded: %+v", out.Spec)
	}
}

// TestLooseMergeKeys expands merge keys as YAML defines them: the mapping's own keys win,
// then the merged mappings' in order.
func TestLooseMergeKeys(t *testing.T) {
	src := `base: &base {replicas: 3, paused: true}
other: &other {replicas: 4, port: web}
spec:
  <<: [*base, *other]
  paused: false
`
	docs, errs := Documents("m.yaml", []byte(src))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var out looseTarget
	if errs := Loose(docs[0], &out); len(errs) > 0 {
		t.Fatal(errs)
	}
	s := out.Spec
	if s.Replicas == nil || *s.Replicas != 3 || s.Paused || s.Port.String() != "web" {
		t.Errorf("merged spec = replicas %v, paused %v, port %v; want 3 from the first merge, false as written, web",
			s.Replicas, s.Paused, s.Port.String())
	}
}

// TestLooseAliasBudget counts the fields Loose skips against the alias budget: a mapping of
// many unknown fields referred to many times must stop at the budget, not be walked each time.
func TestLooseAliasBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("m: &m {")
	for i := range 2000 {
		fmt.Fprintf(&b, "k%d: 1, ", i)
	}
	b.WriteString("name: v}\nl: &l [")
	for range 200 {
		b.WriteString("*m, ")
	}
	b.WriteString("*m]\nspec:\n  volumes: *l\n  limits: {cpu: 1}\n")
	docs, errs := Documents("b.yaml", []byte(b.String()))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var out looseTarget
	errs = Loose(docs[0], &out)
	if len(errs) != 1 || errs[0].Msg != "document expands to too many values" {
		t.Errorf("errors %v, want the document to go over the budget", errs)
	}
}
