package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// exportedObject is what every rendered object has.
type exportedObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// TestExportKubernetesJSON: -o json prints exactly one document, a v1 List of the objects;
// notes go to stderr.
func TestExportKubernetesJSON(t *testing.T) {
	t.Chdir("../..")
	code, stdout, stderr := run(t, "", "export", "kubernetes", "-f", "examples/hybrid/app.yaml", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	var list struct {
		APIVersion string           `json:"apiVersion"`
		Kind       string           `json:"kind"`
		Items      []exportedObject `json:"items"`
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&list); err != nil || dec.More() {
		t.Fatalf("stdout is not exactly one JSON document: %v\n%s", err, stdout)
	}
	if list.APIVersion != "v1" || list.Kind != "List" {
		t.Errorf("apiVersion %q kind %q, want v1 List", list.APIVersion, list.Kind)
	}
	kinds := map[string]int{}
	for _, it := range list.Items {
		if it.APIVersion == "" || it.Metadata.Name == "" {
			t.Errorf("item %+v lacks apiVersion or name", it)
		}
		kinds[it.Kind]++
	}
	// web, shop, plugins; storefront, catalog, plugin-runner, ledger; the same workloads.
	want := map[string]int{"RuntimeClass": 1, "NetworkPolicy": 3, "Service": 4, "Deployment": 3, "VirtualMachine": 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d %s, want %d (all: %v)", kinds[k], k, n, kinds)
		}
	}
	if !strings.Contains(stderr, "note: workload ledger: runs as a VM from image localhost/busybox:1") {
		t.Errorf("stderr lacks the containerDisk note:\n%s", stderr)
	}
}

// TestExportKubernetesYAML: the default output is a YAML stream with one document per object,
// the same objects as -o json, in the same order; the flags reach the objects.
func TestExportKubernetesYAML(t *testing.T) {
	t.Chdir("../..")
	args := []string{"export", "kubernetes", "-f", "examples/hybrid/app.yaml", "--namespace", "shop", "--runtime-class", "kata"}
	code, stdout, stderr := run(t, "", args...)
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	_, js, _ := run(t, "", append(args, "-o", "json")...)
	var list struct{ Items []exportedObject }
	if err := json.Unmarshal([]byte(js), &list); err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(stdout, "\n---\n")
	if len(docs) != len(list.Items) {
		t.Fatalf("%d YAML documents, %d JSON items", len(docs), len(list.Items))
	}
	for i, doc := range docs {
		var o exportedObject
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if o != list.Items[i] {
			t.Errorf("document %d is %+v, JSON item %+v", i, o, list.Items[i])
		}
		switch {
		case o.Kind == "RuntimeClass":
			if o.Metadata.Name != "kata" || o.Metadata.Namespace != "" {
				t.Errorf("RuntimeClass %+v, want kata, cluster-wide", o.Metadata)
			}
			if !strings.Contains(doc, "handler: kata") {
				t.Errorf("RuntimeClass:\n%s", doc)
			}
		case o.Metadata.Namespace != "shop":
			t.Errorf("%s %s in namespace %q, want shop", o.Kind, o.Metadata.Name, o.Metadata.Namespace)
		}
	}
	if !strings.Contains(stdout, "runtimeClassName: kata") {
		t.Error("no pod runs under runtimeClassName kata")
	}
}

// TestExportKubernetesErrors: problems are reported at FILE:LINE:COL with the field and what
// to do, all of them, with exit 2; usage errors also exit 2.
func TestExportKubernetesErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unrenderable := write("vms.yaml", `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: k}
spec:
  isolation: vm
  vm:
    kernel: /boot/vmlinuz
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: d}
spec:
  isolation: vm
  resources: {cpu: "1"}
  vm: {disk: {path: legacy.qcow2}}
`)
	syntax := write("syntax.yaml", "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: [\n")
	unknown := write("unknown.yaml", "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: w}\nspec:\n  image: x\n  replica: 2\n")
	fleet := write("fleet.yaml", "apiVersion: strata.dev/v1alpha1\nkind: Fleet\nmetadata: {name: f}\nspec:\n  hosts: [{name: h1, capacity: {cpu: \"1\", memory: 1Gi}}]\n")
	dup := write("dup.yaml", "apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: s}\n---\napiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: s}\n")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"cannot be rendered", []string{"-f", unrenderable}, []string{
			unrenderable + ":7:13: spec.vm.kernel: workload k: KubeVirt boots a kernel from a container image",
			unrenderable + ":14:14: spec.resources.disk: workload d:",
			"set spec.resources.disk",
		}},
		{"syntax error", []string{"-f", syntax}, []string{syntax + ":4: syntax error"}},
		{"unknown field", []string{"-f", unknown}, []string{unknown + ":6:3: spec.replica"}},
		{"not a workload or segment", []string{"-f", fleet}, []string{fleet + ":2:7: kind: a Fleet cannot be exported"}},
		{"duplicate", []string{"-f", dup}, []string{dup + ":7:", "Segment s is also defined at " + dup + ":3"}},
		{"missing file", []string{"-f", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml", "check the path"}},
		{"unknown output", []string{"-f", dup, "-o", "table"}, []string{`unknown output format "table": use yaml or json`}},
		{"no input", nil, []string{"give at least one file with -f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, "", append([]string{"export", "kubernetes"}, tt.args...)...)
			if code != ExitInvalid {
				t.Errorf("exit %d, want %d", code, ExitInvalid)
			}
			if stdout != "" {
				t.Errorf("stdout:\n%s", stdout)
			}
			for _, s := range tt.want {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
		})
	}
}
