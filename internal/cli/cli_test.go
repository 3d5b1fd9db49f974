package cli

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/golden"
)

// run runs the command line in the repository root and returns its exit code and output.
func run(t testing.TB, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Execute(args, Streams{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// compareGolden compares output with internal/cli/testdata/name (tests run in the repository root).
func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Compare(t, filepath.Join("internal", "cli", "testdata", name), []byte(got))
}

// TestAssessEstate assesses the example estate (strata documents, Kubernetes manifests, a
// compose file and an RVTools export) with the built-in policy, against golden files.
func TestAssessEstate(t *testing.T) {
	t.Chdir("../..")
	code, stdout, stderr := run(t, "", "assess", "-f", "examples/estate", "-o", "json")
	if code != ExitOK || stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	var report v1alpha1.AssessmentReport
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&report); err != nil || dec.More() {
		t.Fatalf("stdout is not exactly one AssessmentReport: %v", err)
	}
	if n := len(report.Items); n < 30 {
		t.Errorf("the estate has %d workloads, want at least 30", n)
	}
	formats := map[v1alpha1.Format]int{}
	for _, it := range report.Items {
		formats[it.Source.Format]++
	}
	if len(formats) != 4 {
		t.Errorf("items come from formats %v, want all four", formats)
	}
	compareGolden(t, "estate.json", stdout)

	code, stdout, _ = run(t, "", "assess", "-f", "examples/estate")
	if code != ExitOK {
		t.Fatalf("table: exit %d", code)
	}
	compareGolden(t, "estate.txt", stdout)

	code, stdout, _ = run(t, "", "assess", "-f", "examples/estate/shop.yaml", "-o", "yaml")
	if code != ExitOK || !strings.HasPrefix(stdout, "apiVersion: strata.dev/v1alpha1\n") {
		t.Errorf("yaml: exit %d, output starts %.60q", code, stdout)
	}
}

// TestAssessNodeVMs: the report says where each workload's replicas run, by the built-in
// policy and by a custom spec.nodeVM, with placement.nodeVM honoured and warned about.
func TestAssessNodeVMs(t *testing.T) {
	t.Chdir("../..")
	in := "internal/cli/testdata/nodevm/workloads.yaml"
	code, stdout, stderr := run(t, "", "assess", "-f", in)
	if code != ExitOK || stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	compareGolden(t, "nodevm/assess.txt", stdout)
	code, stdout, stderr = run(t, "", "assess", "-f", in, "--policy", "internal/cli/testdata/nodevm/policy.yaml", "-o", "json")
	if code != ExitOK || stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	compareGolden(t, "nodevm/assess-policy.json", stdout)
}

func TestExitCodes(t *testing.T) {
	t.Chdir("../..")
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string // a line that must appear on stderr
	}{
		{"version", "", []string{"version"}, ExitOK, ""},
		{"valid documents", "", []string{"validate", "-f", "examples/estate/shop.yaml"}, ExitOK, "9 documents valid in 1 file"},
		{"invalid document", "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {replicas: x}\n",
			[]string{"validate", "-f", "-"}, ExitInvalid, `-:4:18: spec.replicas: expected an integer, got the string "x"`},
		{"bad CEL in a policy", "apiVersion: strata.dev/v1alpha1\nkind: AssessmentPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - {name: r, when: \"workload.spec ==\", effect: atLeast, tier: vm, message: m}\n",
			[]string{"validate", "-f", "-"}, ExitInvalid, "-:6:38: spec.rules[0].when: rule r: Syntax error"},
		{"bad CEL in a policy's nodeVM", "apiVersion: strata.dev/v1alpha1\nkind: AssessmentPolicy\nmetadata: {name: p}\nspec:\n  rules: []\n  nodeVM:\n    when: class.tenant = 'acme'\n",
			[]string{"validate", "-f", "-"}, ExitInvalid, "-:7:24: spec.nodeVM.when: Syntax error"},
		{"missing file", "", []string{"validate", "-f", "no/such.yaml"}, ExitInvalid, "no such file or directory"},
		{"no -f", "", []string{"validate"}, ExitInvalid, "give at least one file with -f"},
		{"unknown flag", "", []string{"assess", "--nope"}, ExitInvalid, "unknown flag: --nope"},
		{"unknown command", "", []string{"frobnicate"}, ExitInvalid, `unknown command "frobnicate"`},
		{"bad output format", "", []string{"assess", "-f", "examples/estate", "-o", "xml"}, ExitInvalid, `unknown output format "xml"`},
		{"not a document strata reads", "hello: world\n", []string{"assess", "-f", "-"}, ExitInvalid, "-:1:1: not a document strata reads"},
		{"policy from a file", "", []string{"assess", "-f", "examples/estate/shop.yaml", "--policy", "internal/assess/default-policy.yaml"}, ExitOK, ""},
		{"bad policy", "", []string{"assess", "-f", "examples/estate/shop.yaml", "--policy", "examples/estate/shop.yaml"}, ExitInvalid, "expected an AssessmentPolicy, found a Segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.stdin, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and stderr containing %q", code, stderr, tt.code, tt.stderr)
			}
		})
	}
}

// TestAssessPartialInput: problems in one input do not hide the rest; the exit code says so.
func TestAssessPartialInput(t *testing.T) {
	stdin := "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: good}\nspec: {image: x}\n---\n" +
		"apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: bad}\nspec: {traits: {trust: maybe}}\n"
	code, stdout, stderr := run(t, stdin, "assess", "-f", "-", "-o", "json")
	if code != ExitInvalid {
		t.Errorf("exit %d, want %d", code, ExitInvalid)
	}
	if !strings.Contains(stderr, `-:9:24: spec.traits.trust: unsupported value "maybe"`) {
		t.Errorf("stderr does not place the problem:\n%s", stderr)
	}
	var report v1alpha1.AssessmentReport
	if err := json.Unmarshal([]byte(stdout), &report); err != nil || len(report.Items) != 1 || report.Items[0].Name != "good" {
		t.Errorf("want the valid workload assessed: %v %+v", err, report.Items)
	}
}

func TestHelpHasExamples(t *testing.T) {
	for _, cmd := range NewRoot(Streams{}).Commands() {
		if cmd.Name() == "help" || cmd.Name() == "completion" {
			continue
		}
		if cmd.Example == "" {
			t.Errorf("strata %s --help shows no example", cmd.Name())
		}
	}
}

func TestCompletion(t *testing.T) {
	code, stdout, _ := run(t, "", "completion", "bash")
	if code != ExitOK || !strings.Contains(stdout, "__start_strata") {
		t.Errorf("bash completion: exit %d, %d bytes", code, len(stdout))
	}
}
