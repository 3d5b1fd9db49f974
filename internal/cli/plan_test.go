package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/importer"
)

// stopClock makes summary.elapsedMs 0, so that plans compare byte for byte.
func stopClock(t testing.TB) {
	t.Helper()
	saved := clock
	clock = func() time.Time { return time.Time{} }
	t.Cleanup(func() { clock = saved })
}

// decodePlan checks that stdout is exactly one PlacementPlan, with no field the type lacks.
func decodePlan(t *testing.T, stdout string) v1alpha1.PlacementPlan {
	t.Helper()
	var plan v1alpha1.PlacementPlan
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&plan); err != nil || dec.More() {
		t.Fatalf("stdout is not exactly one PlacementPlan: %v", err)
	}
	if plan.APIVersion != v1alpha1.GroupVersion || plan.Kind != v1alpha1.KindPlacementPlan {
		t.Errorf("apiVersion/kind %s/%s", plan.APIVersion, plan.Kind)
	}
	return plan
}

// TestPlanGolden plans the example fleet's own workloads and the example estate (four kinds of
// input) on the example fleet, as a table and as JSON, and explains one workload.
func TestPlanGolden(t *testing.T) {
	t.Chdir("../..")
	stopClock(t)
	fleet := "examples/fleet/fleet.yaml"
	tests := []struct {
		golden string
		args   []string
	}{
		{"plan-fleet.txt", []string{"plan", "-f", "examples/fleet", "--fleet", fleet}},
		{"plan-fleet.json", []string{"plan", "-f", "examples/fleet", "--fleet", fleet, "-o", "json"}},
		{"plan-estate.txt", []string{"plan", "-f", "examples/estate", "--fleet", fleet}},
		{"plan-estate.json", []string{"plan", "-f", "examples/estate", "--fleet", fleet, "-o", "json"}},
		{"plan-explain.txt", []string{"plan", "-f", "examples/fleet", "--fleet", fleet, "--explain", "checkout"}},
		{"plan-explain.json", []string{"plan", "-f", "examples/estate", "--fleet", fleet, "--explain", "payments", "-o", "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			code, stdout, stderr := run(t, "", tt.args...)
			if code != ExitOK || stderr != "" {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr)
			}
			if strings.HasSuffix(tt.golden, ".json") {
				plan := decodePlan(t, stdout)
				if plan.Summary.Placed == 0 || plan.Summary.LowerBound > plan.Summary.HostsUsed {
					t.Errorf("summary %+v", plan.Summary)
				}
			}
			compareGolden(t, tt.golden, stdout)
		})
	}
}

// TestPlanEstate checks the plan of the example estate beyond its golden file: every workload
// of the four input kinds is planned, at its assessed tier.
func TestPlanEstate(t *testing.T) {
	t.Chdir("../..")
	_, stdout, _ := run(t, "", "assess", "-f", "examples/estate", "-o", "json")
	var report v1alpha1.AssessmentReport
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "", "plan", "-f", "examples/estate", "--fleet", "examples/fleet/fleet.yaml", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	plan := decodePlan(t, stdout)
	tiers := map[string]v1alpha1.Tier{}
	for _, it := range report.Items {
		tiers[it.Name] = it.Tier
	}
	planned := map[string]bool{}
	for _, pl := range plan.Placements {
		planned[pl.Workload] = true
		if pl.Tier != tiers[pl.Workload] {
			t.Errorf("%s/%d planned as %s, assessed %s", pl.Workload, pl.Replica, pl.Tier, tiers[pl.Workload])
		}
		if (pl.Tier == v1alpha1.TierVM) != (pl.Node == "") {
			t.Errorf("%s/%d: tier %s in node %q", pl.Workload, pl.Replica, pl.Tier, pl.Node)
		}
	}
	for _, u := range plan.Unplaced {
		planned[u.Workload] = true
	}
	set, errs := importer.Files([]string{"examples/estate"}, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, it := range set.Items {
		w := &it.Workload
		if planned[w.Metadata.Name] != (w.Spec.ReplicaCount() > 0) {
			t.Errorf("%s has %d replicas, and is planned: %v", w.Metadata.Name, w.Spec.ReplicaCount(), planned[w.Metadata.Name])
		}
	}
}

func TestPlanExitCodes(t *testing.T) {
	t.Chdir("../..")
	stopClock(t)
	fleet := "examples/fleet/fleet.yaml"
	const fleetDoc = "apiVersion: strata.dev/v1alpha1\nkind: Fleet\nmetadata: {name: f}\nspec:\n  hostPools:\n" +
		"  - {prefix: h, count: 12, capacity: {cpu: \"8\", memory: 32Gi}}\n  - {prefix: h1, count: 2, capacity: {cpu: \"8\", memory: 32Gi}}\n"
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string // a line that must appear on stderr
	}{
		{"no -f", "", []string{"plan", "--fleet", fleet}, ExitInvalid, "give at least one input with -f, or --host for what the daemon runs now"},
		{"no --fleet", "", []string{"plan", "-f", "examples/estate"}, ExitInvalid, "give the fleet to plan on with --fleet FILE"},
		{"two standard inputs", "", []string{"plan", "-f", "-", "--fleet", "-"}, ExitInvalid, "only one of -f and --fleet can read standard input"},
		{"bad output", "", []string{"plan", "-f", "examples/estate", "--fleet", fleet, "-o", "xml"}, ExitInvalid, `unknown output format "xml": use table, json or yaml`},
		{"missing fleet", "", []string{"plan", "-f", "examples/estate", "--fleet", "no/such.yaml"}, ExitInvalid, "no/such.yaml: open no/such.yaml: no such file or directory"},
		{"workloads for a fleet", "", []string{"plan", "-f", "examples/estate", "--fleet", "examples/fleet/workloads.yaml"}, ExitInvalid,
			"examples/fleet/workloads.yaml:4:7: kind: expected a Fleet, found a Workload (a fleet file holds one Fleet; give workloads with -f)"},
		{"no fleet in the file", "apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: s}\nspec: {}\n",
			[]string{"plan", "-f", "examples/estate", "--fleet", "-"}, ExitInvalid, "-:2:7: kind: expected a Fleet, found a Segment"},
		{"hosts named twice", fleetDoc, []string{"plan", "-f", "examples/estate", "--fleet", "-"}, ExitInvalid,
			"-:7:14: spec.hostPools[1].prefix: invalid value \"h1\" (host h11 of this pool has the name of a host of spec.hostPools[0].prefix; every host needs its own name, so change the prefix)"},
		{"invalid fleet", "apiVersion: strata.dev/v1alpha1\nkind: Fleet\nmetadata: {name: f}\nspec: {hosts: [{name: h1, capacity: {cpu: lots}}]}\n",
			[]string{"plan", "-f", "examples/estate", "--fleet", "-"}, ExitInvalid, "-:4:43: spec.hosts[0].capacity.cpu: invalid quantity \"lots\""},
		{"unknown workload to explain", "", []string{"plan", "-f", "examples/fleet", "--fleet", fleet, "--explain", "nope"}, ExitInvalid,
			"--explain nope: no workload of that name in the inputs (use a name that strata assess lists: checkout, etcd, search, ci-runner, reports-db, trainer)"},
		{"unplaced is no failure", "", []string{"plan", "-f", "examples/fleet", "--fleet", fleet}, ExitOK, ""},
		{"unless asked", "", []string{"plan", "-f", "examples/fleet", "--fleet", fleet, "--fail-unplaced"}, ExitFailure, "error: 2 replicas could not be placed"},
		{"bad policy", "", []string{"plan", "-f", "examples/fleet", "--fleet", fleet, "--policy", fleet}, ExitInvalid, "expected an AssessmentPolicy, found a Fleet"},
		{"policy from a file", "", []string{"plan", "-f", "examples/fleet", "--fleet", fleet, "--policy", "internal/assess/default-policy.yaml"}, ExitOK, ""},
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

// TestPlanPartialInput: an invalid workload is reported (exit 2) and the valid ones are still
// planned and printed.
func TestPlanPartialInput(t *testing.T) {
	t.Chdir("../..")
	stdin := "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: good}\nspec: {image: x, replicas: 2}\n---\n" +
		"apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: bad}\nspec: {replicas: -1}\n"
	code, stdout, stderr := run(t, stdin, "plan", "-f", "-", "--fleet", "examples/fleet/fleet.yaml", "-o", "json")
	if code != ExitInvalid || !strings.Contains(stderr, "-:9:18: spec.replicas") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	if plan := decodePlan(t, stdout); plan.Summary.Placed != 2 {
		t.Errorf("want the two replicas of good placed: %+v", plan.Summary)
	}
}

// writeLargeFleet writes a fleet of hosts identical hosts in three zones, and workloads
// strata documents of ten replicas each: seeded sizes, twenty tenants, a tenth untrusted
// (sandboxed), a tenth VMs, a fifth spread over hosts.
func writeLargeFleet(tb testing.TB, dir string, hosts, workloads int) (fleet, inputs string) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	fleet = filepath.Join(dir, "fleet.yaml")
	var f strings.Builder
	f.WriteString("apiVersion: strata.dev/v1alpha1\nkind: Fleet\nmetadata: {name: large}\nspec:\n  hostPools:\n")
	for i, z := range []string{"a", "b", "c"} {
		n := hosts / 3
		if i == 0 {
			n += hosts % 3
		}
		fmt.Fprintf(&f, "  - {prefix: %s, count: %d, capacity: {cpu: \"64\", memory: 256Gi}, labels: {zone: %s}}\n", z, n, z)
	}
	f.WriteString("  nodeShapes: [{name: small, cpu: \"4\", memory: 16Gi}, {name: medium, cpu: \"8\", memory: 32Gi}, {name: large, cpu: \"16\", memory: 64Gi}]\n")
	inputs = filepath.Join(dir, "workloads")
	if err := os.Mkdir(inputs, 0o755); err != nil {
		tb.Fatal(err)
	}
	var w strings.Builder
	for i := range workloads {
		fmt.Fprintf(&w, "---\napiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: app-%d, labels: {strata.dev/tenant: team-%d}}\n", i, rng.IntN(20))
		fmt.Fprintf(&w, "spec:\n  image: registry.local/app-%d:1\n  replicas: 10\n  resources: {cpu: %dm, memory: %dMi}\n", i, 100*(1+rng.IntN(20)), 128*(1+rng.IntN(32)))
		switch x := rng.IntN(10); {
		case x == 0:
			w.WriteString("  traits: {trust: untrusted}\n")
		case x == 1:
			w.WriteString("  isolation: vm\n")
		case x < 4:
			w.WriteString("  placement: {spread: host}\n")
		}
	}
	for name, data := range map[string]string{fleet: f.String(), filepath.Join(inputs, "apps.yaml"): w.String()} {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return fleet, inputs
}

// BenchmarkPlanLargeFleet runs `strata plan -o json` end to end on 5,000 hosts and 50,000
// replicas (5,000 workloads): reading and decoding the YAML, assessing, planning, printing.
func BenchmarkPlanLargeFleet(b *testing.B) {
	fleet, inputs := writeLargeFleet(b, b.TempDir(), 5000, 5000)
	args := []string{"plan", "-f", inputs, "--fleet", fleet, "-o", "json"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if code := Execute(args, Streams{Out: io.Discard, Err: io.Discard}); code != ExitOK {
			b.Fatalf("exit %d", code)
		}
	}
	b.ReportMetric(50000*float64(b.N)/b.Elapsed().Seconds(), "replicas/s")
}

// TestLargeFleetPlans makes sure the benchmark's input is valid and fully placed, so the
// benchmark measures the work and not an early error.
func TestLargeFleetPlans(t *testing.T) {
	fleet, inputs := writeLargeFleet(t, t.TempDir(), 60, 40)
	code, stdout, stderr := run(t, "", "plan", "-f", inputs, "--fleet", fleet, "-o", "json")
	if code != ExitOK || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	plan := decodePlan(t, stdout)
	if plan.Summary.Placed != 400 || plan.Summary.UnplacedCount != 0 {
		t.Errorf("placed %d of 400, %d unplaced", plan.Summary.Placed, plan.Summary.UnplacedCount)
	}
}
