package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const simWorkload = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: web}
spec:
  image: localhost/web:1
  resources: {cpu: 500m, memory: 256Mi}
  scaling: {max: 100}
`

// TestSimulate makes a trace with simulate trace, replays it with simulate scaling as JSON and
// as a table with a plot, and checks the JSON contract.
func TestSimulate(t *testing.T) {
	dir := t.TempDir()
	trace, plot, wl := filepath.Join(dir, "demand.csv"), filepath.Join(dir, "s.svg"), filepath.Join(dir, "web.yaml")
	if err := os.WriteFile(wl, []byte(simWorkload), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "", "simulate", "trace", "--days", "3", "--seed", "2", "-o", trace); code != ExitOK {
		t.Fatalf("trace: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := run(t, "", "simulate", "scaling", "-f", wl, "--trace", trace, "-o", "json", "--plot", plot)
	if code != ExitOK || stderr != "" {
		t.Fatalf("scaling: exit %d: %s", code, stderr)
	}
	var out struct {
		Policies []struct {
			Name            string   `json:"name"`
			SlackPercent    *float64 `json:"slackPercent"`
			ShortagePercent *float64 `json:"shortagePercent"`
			ReplicaHours    *float64 `json:"replicaHours"`
			Model           string   `json:"model"`
		} `json:"policies"`
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil || dec.More() {
		t.Fatalf("stdout is not one {policies: [...]} document: %v\n%s", err, stdout)
	}
	var names []string
	for _, p := range out.Policies {
		names = append(names, p.Name)
		if p.SlackPercent == nil || p.ShortagePercent == nil || p.ReplicaHours == nil || *p.ReplicaHours <= 0 {
			t.Errorf("policy %s lacks a figure: %+v", p.Name, p)
		}
	}
	if strings.Join(names, ",") != "reactive,predictive,oracle" || out.Policies[1].Model == "" {
		t.Errorf("policies %v, predictive model %q", names, out.Policies[1].Model)
	}
	if svg, err := os.ReadFile(plot); err != nil || !strings.HasPrefix(string(svg), "<svg") {
		t.Errorf("plot: %v", err)
	}

	code, stdout, _ = run(t, "", "simulate", "scaling", "-f", wl, "--trace", trace)
	if code != ExitOK || !strings.Contains(stdout, "container tier") || !strings.Contains(stdout, "500m CPU at 70% = 0.35 cores; 1..100 replicas") {
		t.Errorf("table: exit %d:\n%s", code, stdout)
	}

	// The trace on standard input, the same as the file.
	data, _ := os.ReadFile(trace)
	code, stdin, _ := run(t, string(data), "simulate", "scaling", "-f", wl, "--trace", "-")
	if code != ExitOK || stdin != stdout {
		t.Errorf("trace from stdin: exit %d, output differs", code)
	}
}

func TestSimulateInputErrors(t *testing.T) {
	dir := t.TempDir()
	wl := filepath.Join(dir, "web.yaml")
	bad := filepath.Join(dir, "bad.csv")
	two := filepath.Join(dir, "two.yaml")
	write := func(name, s string) {
		if err := os.WriteFile(name, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(wl, simWorkload)
	write(bad, "0,1\n300,2\n200,3\n")
	write(two, simWorkload+"---\n"+strings.Replace(simWorkload, "name: web", "name: api", 1))
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"unsorted trace", []string{"-f", wl, "--trace", bad}, bad + ":3: timestamp 200 is not after 300 of line 2 (sort the file by time)"},
		{"percent without cores", []string{"-f", wl, "--trace", bad, "--format", "azure"}, "the azure format gives CPU in percent"},
		{"two workloads", []string{"-f", two, "--trace", bad}, "2 workloads found (choose one with --workload: web, api)"},
		{"no trace", []string{"-f", wl}, "give the demand trace with --trace FILE"},
		{"bad format", []string{"-f", wl, "--trace", bad, "--format", "xls"}, `unknown trace format "xls"`},
		{"bad startup", []string{"-f", wl, "--trace", bad, "--startup", "kvm=3s"}, `unknown tier "kvm"`},
		{"missing trace file", []string{"-f", wl, "--trace", filepath.Join(dir, "none.csv")}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, "", append([]string{"simulate", "scaling"}, tt.args...)...)
			if code != ExitInvalid || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, stderr, tt.stderr)
			}
		})
	}
	if code, _, stderr := run(t, "", "simulate", "trace", "--days", "0"); code != ExitInvalid || !strings.Contains(stderr, "--days 0") {
		t.Errorf("trace --days 0: exit %d, %s", code, stderr)
	}
}
