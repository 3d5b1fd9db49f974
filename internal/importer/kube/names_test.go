package kube

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"strata.dev/strata/internal/load"
)

func TestDNSLabel(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"web", "web"},
		{"web.shop.example", "web-shop-example"},
		{"Web_Server", "web-server"},
		{"--a..b--", "a-b"},
		{"ünïcode", "n-code"},
		{"...", ""},
		{"", ""},
		{strings.Repeat("a", 70), strings.Repeat("a", 63)},
		{strings.Repeat("a", 62) + ".b", strings.Repeat("a", 62)},
	} {
		if got := dnsLabel(tc.in); got != tc.want {
			t.Errorf("dnsLabel(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNamer(t *testing.T) {
	long := strings.Repeat("x", 63)
	n := newNamer()
	var got []string
	for _, o := range []struct{ base, ns string }{
		{"web", "shop"},
		{"web", "staging"},
		{"web", "staging"},
		{"web", ""},
		{"web-2", ""},
		{long, ""},
		{long, "shop"},
		{long, ""},
	} {
		got = append(got, n.name(o.base, o.ns))
	}
	want := []string{"web", "web-staging", "web-2", "web-3", "web-2-2", long, strings.Repeat("x", 58) + "-shop", strings.Repeat("x", 61) + "-2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestNamesAndSources(t *testing.T) {
	obj := func(kind, name, ns string) string {
		meta := "metadata:\n  name: '" + name + "'\n"
		if ns != "" {
			meta += "  namespace: " + ns + "\n"
		}
		if kind == kindPod {
			return "apiVersion: v1\nkind: Pod\n" + meta + "spec:\n" + indent(2, container("")) + "---\n"
		}
		return "apiVersion: apps/v1\nkind: " + kind + "\n" + meta + "spec:\n  template:\n    spec:\n" + indent(6, container("")) + "---\n"
	}
	src := obj(kindDeployment, "web", "shop") +
		obj(kindStatefulSet, "web", "staging") +
		obj(kindPod, "web", "") +
		obj(kindPod, "Legacy.App", "") +
		obj(kindPod, "plain", "") +
		obj(kindPod, "", "") +
		"apiVersion: v1\nkind: Pod\nmetadata: {generateName: runner-}\nspec:\n" + indent(2, container(""))
	set, errs := importString(t, "n.yaml", src)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	type row struct{ name, source string }
	var got []row
	for _, it := range set.Items {
		got = append(got, row{it.Workload.Metadata.Name, it.Source.Name})
	}
	want := []row{
		{"web", "shop/web"},
		{"web-staging", "staging/web"},
		{"web-2", "web"},
		{"legacy-app", "Legacy.App"},
		{"plain", ""},
		{"pod", ""},
		{"runner", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestLists(t *testing.T) {
	src := `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
  spec:
    containers: [{name: a, image: a:1}]
- apiVersion: v1
  kind: Service
  metadata: {name: a}
- apiVersion: v1
  kind: List
  items:
  - apiVersion: batch/v1
    kind: Job
    metadata: {name: inner}
    spec:
      template:
        spec:
          containers: [{name: j, image: j:1}]
---
apiVersion: v1
kind: PodList
items:
- metadata: {name: typed}
  spec:
    containers: [{name: t, image: t:1}]
---
apiVersion: apps/v1
kind: DeploymentList
items: []
---
apiVersion: v1
kind: List
items:
`
	set, errs := importString(t, "l.yaml", src)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	type row struct {
		name, kind string
		line       int
	}
	var got []row
	for _, it := range set.Items {
		got = append(got, row{it.Workload.Metadata.Name, it.Source.Kind, it.Source.Line})
	}
	want := []row{{"a", "Pod", 4}, {"inner", "Job", 15}, {"typed", "Pod", 26}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("items: got %v, want %v", got, want)
	}
	if len(set.Skipped) != 1 || set.Skipped[0].Source.Line != 9 || set.Skipped[0].Source.Kind != "Service" {
		t.Errorf("skipped: %+v", set.Skipped)
	}
}

func TestIsKubernetes(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{"apiVersion: v1\nkind: Pod\n", true},
		{"apiVersion: apps/v1\nkind: Deployment\n", true},
		{"apiVersion: example.com/v1\nkind: Widget\n", true},
		{"apiVersion: strata.dev/v1alpha1\nkind: Workload\n", false},
		{"kind: Pod\n", false},
		{"apiVersion: v1\n", false},
		{"services:\n  web: {image: nginx}\n", false},
		{"- a\n- b\n", false},
	} {
		docs, errs := loadDocs(t, tc.src)
		if len(errs) > 0 || len(docs) != 1 {
			t.Fatalf("%q: %d documents, %v", tc.src, len(docs), errs)
		}
		if got := IsKubernetes(docs[0]); got != tc.want {
			t.Errorf("IsKubernetes(%q) = %v, want %v", tc.src, got, tc.want)
		}
	}
}

func TestControlledObjects(t *testing.T) {
	src := `apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: pay}
spec:
  template:
    spec:
      containers: [{name: api, image: api:1}]
---
apiVersion: v1
kind: Pod
metadata:
  name: api-x1
  namespace: pay
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: api, uid: u1, controller: true}]
spec:
  containers: [{name: api, image: api:1}]
---
apiVersion: v1
kind: Pod
metadata:
  name: api-x2
  namespace: other
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: api, uid: u2, controller: true}]
spec:
  containers: [{name: api, image: api:1}]
---
apiVersion: v1
kind: Pod
metadata:
  name: api-x3
  namespace: pay
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: api, uid: u1}]
spec:
  containers: [{name: api, image: api:1}]
`
	set, errs := importString(t, "o.yaml", src)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var names []string
	for _, it := range set.Items {
		names = append(names, it.Source.Name)
	}
	// api-x1 is the Deployment's; api-x2's controller is in another namespace; api-x3's
	// owner is no controller.
	if want := []string{"pay/api", "other/api-x2", "pay/api-x3"}; !reflect.DeepEqual(names, want) {
		t.Errorf("imported %v, want %v", names, want)
	}
	if len(set.Skipped) != 1 || set.Skipped[0].Reason != "Pod is run by Deployment api, which is among the inputs" {
		t.Errorf("skipped %+v", set.Skipped)
	}
}

// TestImporterKeepsNoDocument checks that the Importer lets every parsed document go once
// it is added, so that a caller reading a stream holds one document at a time.
func TestImporterKeepsNoDocument(t *testing.T) {
	var src strings.Builder
	for i := range 50 {
		fmt.Fprintf(&src, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p%d, namespace: ns}\n"+
			"spec: {containers: [{name: c, image: x, env: [{name: A, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]}]}\n"+
			"---\napiVersion: v1\nkind: Service\nmetadata: {name: s%d}\n", i, i)
	}
	var released atomic.Int32
	var imp Importer
	func() {
		docs, errs := load.Documents("many.yaml", []byte(src.String()))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		for _, d := range docs {
			runtime.SetFinalizer(d.Node, func(*yaml.Node) { released.Add(1) })
			imp.Add(d)
		}
	}()
	for i := 0; i < 20 && released.Load() < 100; i++ {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	if n := released.Load(); n != 100 {
		t.Errorf("%d of 100 parsed documents were let go after Add", n)
	}
	set, errs := imp.Finish()
	if len(errs) > 0 || len(set.Items) != 50 || len(set.Skipped) != 50 || len(set.Items[49].Notes) != 1 {
		t.Errorf("%d workloads, %d skipped, errors %v", len(set.Items), len(set.Skipped), errs)
	}
}
