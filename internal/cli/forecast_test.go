package cli

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/scale"
)

const scaledWeb = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: web}
spec:
  image: registry.example/web:1
  resources: {cpu: "1", memory: 512Mi}
  scaling: {min: 2, max: 40, targetCPUPercent: 50}
`

// TestPlanForecast: the workload with spec.scaling gets the replicas the forecast peak of
// its trace needs, and the plan places that many.
func TestPlanForecast(t *testing.T) {
	stopClock(t)
	dir := t.TempDir()
	wl := filepath.Join(dir, "web.yaml")
	trace := filepath.Join(dir, "cpu.csv")
	if err := os.WriteFile(wl, []byte(scaledWeb), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := scale.Synthetic(14, 5*time.Minute, 7, scale.SynthOptions{Base: 4})
	f, err := os.Create(trace)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.WriteCSV(f); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	fleet, err := filepath.Abs("../../examples/fleet/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := run(t, "", "plan", "-f", wl, "--fleet", fleet, "--forecast", "7", "--trace", trace, "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var plan v1alpha1.PlacementPlan
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatal(err)
	}
	if len(plan.Forecast) != 1 {
		t.Fatalf("forecast %+v, want web sized", plan.Forecast)
	}
	fs := plan.Forecast[0]
	histPeak := 0.0
	for _, c := range tr.CPU {
		histPeak = math.Max(histPeak, c)
	}
	if fs.Workload != "web" || fs.Days != 7 || fs.ReplicaCores != 0.5 || fs.Model == "" ||
		math.Abs(fs.HistoryPeakCores-histPeak) > 0.01 || fs.PeakCores < 4 || fs.PeakCores > 2*histPeak {
		t.Errorf("sizing %+v; want web at 0.5 cores a replica, a peak above the base of 4 cores and within twice the trace's peak %.2f", fs, histPeak)
	}
	if want := max(int32(math.Ceil(fs.PeakCores/0.5)), 2); fs.Replicas != want {
		t.Errorf("replicas %d for a peak of %.3f cores at 0.5 a replica, want %d", fs.Replicas, fs.PeakCores, want)
	}
	placed := 0
	for _, p := range plan.Placements {
		if p.Workload == "web" {
			placed++
		}
	}
	for _, u := range plan.Unplaced {
		if u.Workload == "web" {
			placed++
		}
	}
	if placed != int(fs.Replicas) {
		t.Errorf("the plan holds %d replicas of web, want the %d it was sized for", placed, fs.Replicas)
	}

	// The table says it too.
	code, stdout, _ = run(t, "", "plan", "-f", wl, "--fleet", fleet, "--forecast", "7", "--trace", "web="+trace)
	if code != ExitOK || !strings.Contains(stdout, "SIZED FOR") || !strings.Contains(stdout, "web ") {
		t.Errorf("table (exit %d):\n%s", code, stdout)
	}
}

func TestPlanForecastErrors(t *testing.T) {
	dir := t.TempDir()
	wl := filepath.Join(dir, "web.yaml")
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(wl, []byte(scaledWeb), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("timestamp,cpu\n1700000000,1.5\n1700000300,-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fleet := "../../examples/fleet/fleet.yaml"
	for _, tt := range []struct {
		name string
		args []string
		msg  string
	}{
		{"no trace", []string{"--forecast", "7"}, "--forecast needs the demand to forecast from"},
		{"no days", []string{"--trace", bad}, "--forecast 0: give the days to plan for"},
		{"negative demand", []string{"--forecast", "7", "--trace", bad}, bad + ":3"},
		{"unknown workload", []string{"--forecast", "7", "--trace", "nope=" + bad}, "no workload nope in the inputs"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, "", append([]string{"plan", "-f", wl, "--fleet", fleet}, tt.args...)...)
			if code != ExitInvalid || !strings.Contains(stderr, tt.msg) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 saying %q", code, stderr, tt.msg)
			}
		})
	}
}
