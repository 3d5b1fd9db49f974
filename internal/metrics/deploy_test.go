package metrics_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/metrics"
)

// exported returns the names of every metric family a daemon's registry produces once
// each instrument has been used.
func exported(t *testing.T) map[string]bool {
	e := newEnv(t)
	e.start(t, "web-0", "web", 0)
	e.workload(t, "web", "front", 1, v1alpha1.WorkloadStatus{Tier: v1alpha1.TierContainer, Instances: []v1alpha1.Instance{
		{ID: "web-0", Tier: v1alpha1.TierContainer, State: "running", Restarts: 1},
	}})
	m := metrics.New(metrics.Options{Store: e.st, StorePath: e.path, Drivers: e.reg})
	m.ObserveReconcile(time.Millisecond)
	m.ObserveProbeFailure("web", "web-0")
	m.ObserveStartup(v1alpha1.TierContainer, 300*time.Millisecond)
	m.WatchQueue(func() int { return 0 })
	m.WatchDrivers(func() []v1alpha1.DriverStatus { return []v1alpha1.DriverStatus{{Name: "containerd", Ready: true}} })
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	return names
}

var metricName = regexp.MustCompile(`\bstrata_[a-z0-9_]+`)

// TestDeployFilesUseExportedMetrics: every strata_ metric the Grafana dashboard and the
// alert rules under deploy/ query is one the daemon exports (histograms through their
// _bucket, _sum and _count series).
func TestDeployFilesUseExportedMetrics(t *testing.T) {
	names := exported(t)
	for _, file := range []string{"../../deploy/grafana/strata.json", "../../deploy/prometheus/alerts.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		used := metricName.FindAllString(string(data), -1)
		if len(used) < 5 {
			t.Errorf("%s uses %d strata metrics; the pattern or the file is wrong", file, len(used))
		}
		for _, name := range used {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && names[b] {
					base = b
				}
			}
			if !names[base] {
				t.Errorf("%s uses %s, which the daemon does not export (it exports %v)", file, name, sortedKeys(names))
			}
		}
	}
}

// TestAlertRules checks the rules file's shape: every rule is an alert with an
// expression, a known severity and a summary, and names are unique.
func TestAlertRules(t *testing.T) {
	data, err := os.ReadFile("../../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || seen[r.Alert] {
				t.Errorf("group %s: rule %q: empty or repeated alert name", g.Name, r.Alert)
			}
			seen[r.Alert] = true
			if r.Expr == "" || strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") || strings.Count(r.Expr, "[") != strings.Count(r.Expr, "]") {
				t.Errorf("%s: expression %q is empty or unbalanced", r.Alert, r.Expr)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary annotation", r.Alert)
			}
		}
	}
	if len(seen) < 8 {
		t.Errorf("%d alerts, want the set documented in deploy/prometheus/README.md", len(seen))
	}
}

// TestGrafanaDashboard checks the dashboard's shape: panels with unique ids, each
// querying the data source variable.
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("../../deploy/grafana/strata.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr       string `json:"expr"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	ids := map[int]bool{}
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] || p.Title == "" {
			t.Errorf("panel %d %q: repeated id or no title", p.ID, p.Title)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			queries++
			if q.Expr == "" || q.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: query %q on data source %q, want an expression on ${datasource}", p.Title, q.Expr, q.Datasource.UID)
			}
		}
	}
	if d.UID == "" || queries < 10 {
		t.Errorf("uid %q, %d queries: want a uid and the documented panels", d.UID, queries)
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
