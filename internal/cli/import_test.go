package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"strata.dev/strata/internal/importer/convert"
)

// mixedInputs is the converter's test estate: a compose project, a multi-document manifest,
// a vInfo export and strata documents (internal/importer/convert/testdata/mixed).
const mixedInputs = "internal/importer/convert/testdata/mixed"

// TestImportGolden: the YAML output names each object's source, its tier and the rules
// behind it, and its notes; skipped objects are listed at the end and on stderr.
func TestImportGolden(t *testing.T) {
	t.Chdir("../..")
	code, stdout, stderr := run(t, "", "import", "-f", mixedInputs)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	compareGolden(t, "import-mixed.yaml", stdout)
	for _, want := range []string{
		"skipped: " + mixedInputs + "/k8s.yaml:1, Namespace payments: kind Namespace describes no workload\n",
		"skipped: " + mixedInputs + "/k8s.yaml:25, ConfigMap payments/ledger-config",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "note:") {
		t.Errorf("notes are written beside the objects, not on stderr:\n%s", stderr)
	}
}

// TestImportJSON: -o json prints exactly one List whose sources line up with its items and
// carry the assessment; --segment-per none makes no segment.
func TestImportJSON(t *testing.T) {
	t.Chdir("../..")
	code, stdout, stderr := run(t, "", "import", "-f", mixedInputs, "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var l convert.List
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil || dec.More() {
		t.Fatalf("stdout is not exactly one List: %v", err)
	}
	if l.Kind != "List" || len(l.Items) != 9 || len(l.Sources) != len(l.Items) || len(l.Notes) != 4 || len(l.Skipped) != 2 {
		t.Fatalf("kind %s: %d items, %d sources, %d notes, %d skipped", l.Kind, len(l.Items), len(l.Sources), len(l.Notes), len(l.Skipped))
	}
	for i, s := range l.Sources {
		item := l.Items[i].(map[string]any)
		ref := item["kind"].(string) + "/" + item["metadata"].(map[string]any)["name"].(string)
		if s.Object != ref {
			t.Errorf("source %d is of %s, item %s", i, s.Object, ref)
		}
		if (item["kind"] == "Workload") != (s.Tier != "") {
			t.Errorf("%s: tier %q", ref, s.Tier)
		}
	}
	if s := l.Sources[5]; s.Object != "Workload/api" || s.Tier != "sandbox" || len(s.Reasons) != 1 || s.Reasons[0].Rule != "untrusted-code" {
		t.Errorf("api: %+v, want sandbox by untrusted-code", s)
	}

	_, stdout, _ = run(t, "", "import", "-f", mixedInputs, "-o", "json", "--segment-per", "none")
	var none convert.List
	if err := json.Unmarshal([]byte(stdout), &none); err != nil {
		t.Fatal(err)
	}
	var segments []string
	for _, s := range none.Sources {
		if strings.HasPrefix(s.Object, "Segment/") {
			segments = append(segments, s.Object)
		}
	}
	if len(segments) != 1 || segments[0] != "Segment/edge" { // the strata document's own
		t.Errorf("--segment-per none: segments %v, want the strata document's edge alone", segments)
	}
}

// TestImportInputErrors: an empty input, a Helm template, an unknown flag value and a Fleet
// are refused with exit 2, each saying what to do; what could be read is still written.
func TestImportInputErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	compose := write("compose.yaml", "services:\n  web: {image: nginx}\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"empty", []string{"-f", write("empty.yaml", "# TODO\n\n")}, "empty.yaml: no documents"},
		{"helm", []string{"-f", write("deploy.yaml", "kind: Deployment\nspec:\n  replicas: {{ .Values.replicas }}\n")}, "deploy.yaml:3: a Helm chart template"},
		{"fleet", []string{"-f", write("fleet.yaml", "apiVersion: strata.dev/v1alpha1\nkind: Fleet\nmetadata: {name: dc}\nspec: {hosts: [{name: h1, capacity: {cpu: \"8\", memory: 8Gi}}]}\n")}, "a Fleet is not imported"},
		{"segment-per", []string{"-f", compose, "--segment-per", "zone"}, `unknown --segment-per "zone"`},
		{"output", []string{"-f", compose, "-o", "table"}, `unknown output format "table"`},
		{"no input", nil, "give at least one input with -f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, "", append([]string{"import"}, tt.args...)...)
			if code != ExitInvalid || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, stderr, tt.want)
			}
		})
	}
	code, stdout, stderr := run(t, "", "import", "-f", compose, "-f", filepath.Join(dir, "empty.yaml"))
	if code != ExitInvalid || !strings.Contains(stdout, "name: web") || !strings.Contains(stderr, "no documents") {
		t.Errorf("partial input: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestApplyAndExportReadImports: export kubernetes renders a compose file as import writes
// it, with import's notes on stderr; apply and delete refuse nothing they can read before
// talking to the daemon (here there is none: a runtime failure, exit 1, not exit 2).
func TestApplyAndExportReadImports(t *testing.T) {
	t.Chdir("../..")
	code, direct, stderr := run(t, "", "export", "kubernetes", "-f", mixedInputs+"/compose.yaml")
	if code != ExitOK {
		t.Fatalf("export: exit %d\n%s", code, stderr)
	}
	_, imported, _ := run(t, "", "import", "-f", mixedInputs+"/compose.yaml")
	code, viaImport, stderr2 := run(t, imported, "export", "kubernetes", "-f", "-")
	if code != ExitOK || viaImport != direct {
		t.Errorf("export of import's output differs from export of the input (exit %d):\n%s\n---\n%s\n%s", code, viaImport, direct, stderr2)
	}
	if !strings.Contains(stderr, "note: "+mixedInputs+"/compose.yaml:4: metadata.name: named shop-front") {
		t.Errorf("export's stderr lacks import's note:\n%s", stderr)
	}
	for _, cmd := range [][]string{{"apply"}, {"delete"}} {
		args := append(slices.Clone(cmd), "--socket", filepath.Join(t.TempDir(), "none.sock"), "-f", mixedInputs+"/compose.yaml")
		code, _, stderr := run(t, "", args...)
		if code != ExitFailure {
			t.Errorf("%s without a daemon: exit %d, want 1\n%s", cmd[0], code, stderr)
		}
		if cmd[0] == "apply" && !strings.Contains(stderr, "note: "+mixedInputs+"/compose.yaml:4: metadata.name: named shop-front") {
			t.Errorf("apply prints no notes before it talks to the daemon:\n%s", stderr)
		}
	}
}

// TestRecursiveInputs: -R reads the directories below the one given, for import and assess
// alike; without it they are left alone; an empty file is an error for validate too.
func TestRecursiveInputs(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"top.yaml":                "services:\n  top: {image: nginx}\n",
		"teams/a/compose.yaml":    "name: team-a\nservices:\n  deep: {image: nginx}\n",
		"teams/b/deployment.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: deeper, namespace: team-b}\nspec: {containers: [{name: c, image: x}]}\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, flat, _ := run(t, "", "assess", "-f", dir)
	if strings.Contains(flat, "deep") || !strings.Contains(flat, "top") {
		t.Errorf("assess without -R:\n%s", flat)
	}
	_, deep, _ := run(t, "", "assess", "-R", "-f", dir)
	if !strings.Contains(deep, "deeper") || !strings.Contains(deep, "3 workloads") {
		t.Errorf("assess -R:\n%s", deep)
	}
	code, out, stderr := run(t, "", "import", "-R", "-f", dir)
	if code != ExitOK || !strings.Contains(out, "segment: team-a") || !strings.Contains(out, "segment: team-b") {
		t.Errorf("import -R: exit %d\n%s\n%s", code, out, stderr)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("# to do\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "", "validate", "-f", empty); code != ExitInvalid || !strings.Contains(stderr, "empty.yaml: no documents") {
		t.Errorf("validate of an empty file: exit %d\n%s", code, stderr)
	}
}
