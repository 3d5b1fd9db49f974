package operator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"

	"strata.dev/strata/internal/kube/render"
)

// podMetricsJSON is a PodMetricsList as metrics-server serves it, with one container per
// pod using cpu[i] (a Kubernetes quantity such as 250m) and a sidecar using 1m more.
func podMetricsJSON(ns string, cpu ...string) string {
	var items []string
	for i, c := range cpu {
		items = append(items, fmt.Sprintf(`{"metadata":{"name":"web-7d9f-%d","namespace":%q,"creationTimestamp":"2026-01-05T09:00:00Z",
"labels":{"strata.dev/workload":"web","pod-template-hash":"7d9f"}},"timestamp":"2026-01-05T09:00:00Z","window":"15.011s",
"containers":[{"name":"web","usage":{"cpu":%q,"memory":"41232Ki"}},{"name":"sidecar","usage":{"cpu":"1m","memory":"8Mi"}}]}`, i, ns, c))
	}
	return `{"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{},"items":[` + strings.Join(items, ",") + `]}`
}

// metricsServer serves the pod metrics of namespace shop from the body its handler returns
// (status 200), or the status code when code is set; it records the requests' paths and
// selectors.
type metricsServer struct {
	mu       sync.Mutex
	body     string
	code     int
	requests []string
}

func (m *metricsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests = append(m.requests, r.Method+" "+r.URL.Path+"?labelSelector="+r.URL.Query().Get("labelSelector"))
	if m.code != 0 {
		http.Error(w, http.StatusText(m.code), m.code)
		return
	}
	if r.URL.Path != "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(m.body))
}

func (m *metricsServer) set(code int, body string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.code, m.body = code, body
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var web = Target{Namespace: "shop", Workload: "web", Selector: labels.Set{render.LabelWorkload: "web"}}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestMetricsSource: the reader lists the workload's PodMetrics by label selector, sums its
// containers' cpu, keeps a ring of samples a step apart, and averages the demand window.
func TestMetricsSource(t *testing.T) {
	srv := &metricsServer{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	clk := &testClock{now: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	const step = 15 * time.Second
	m, err := NewMetricsSource(&rest.Config{Host: hs.URL, QPS: 1000, Burst: 1000}, MetricsOptions{Step: step, History: 2 * time.Minute, Window: 30 * time.Second, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	srv.set(0, podMetricsJSON("shop", "250m", "0.5"))
	d, err := m.Demand(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	if !near(d.Cores, 0.752) || d.Pods != 2 || len(d.Series) != 1 || !near(d.Series[0], 0.752) || d.Step != step {
		t.Errorf("first demand %+v, want 0.752 cores of 2 pods, one sample", d)
	}
	srv.mu.Lock()
	req := srv.requests[0]
	srv.mu.Unlock()
	if want := "GET /apis/metrics.k8s.io/v1beta1/namespaces/shop/pods?labelSelector=strata.dev/workload=web"; req != want {
		t.Errorf("request %q, want %q", req, want)
	}

	// Samples a step apart; the window (30 s) averages the last two.
	for _, cpu := range []string{"100m", "300m", "500m"} {
		clk.Advance(step)
		srv.set(0, podMetricsJSON("shop", cpu))
		if d, err = m.Demand(ctx, web); err != nil {
			t.Fatal(err)
		}
	}
	if want := []float64{0.752, 0.101, 0.301, 0.501}; len(d.Series) != len(want) || !near(d.Series[3], want[3]) || !near(d.Series[1], want[1]) {
		t.Errorf("series %v, want %v", d.Series, want)
	}
	if !near(d.Cores, (0.301+0.501)/2) || d.Pods != 1 {
		t.Errorf("demand %.3f cores of %d pods, want the window's mean 0.401 of 1", d.Cores, d.Pods)
	}

	// Two calls within half a step replace the last sample rather than add one.
	clk.Advance(step / 4)
	srv.set(0, podMetricsJSON("shop", "700m"))
	if d, err = m.Demand(ctx, web); err != nil {
		t.Fatal(err)
	}
	if len(d.Series) != 4 || !near(d.Series[3], 0.701) {
		t.Errorf("series %v after a second call within the step", d.Series)
	}

	// The ring keeps History (2 min: 8 samples).
	for range 20 {
		clk.Advance(step)
		if d, err = m.Demand(ctx, web); err != nil {
			t.Fatal(err)
		}
	}
	if len(d.Series) != 8 {
		t.Errorf("%d samples kept, want 8 (2 min at 15 s)", len(d.Series))
	}

	// No pod reporting is no measurement: nothing is added.
	clk.Advance(step)
	srv.set(0, podMetricsJSON("shop"))
	if d, err = m.Demand(ctx, web); err != nil {
		t.Fatal(err)
	}
	if len(d.Series) != 8 || d.Pods != 0 {
		t.Errorf("with no pod metrics: %+v, want the 8 samples before and no pods", d)
	}
}

// TestMetricsSourceUnavailable: a cluster that does not serve the metrics API (404), or
// whose metrics-server is down (503), says ErrMetricsUnavailable; other failures do not.
func TestMetricsSourceUnavailable(t *testing.T) {
	srv := &metricsServer{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	m, err := NewMetricsSource(&rest.Config{Host: hs.URL, QPS: 1000, Burst: 1000}, MetricsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		code        int
		unavailable bool
	}{
		{http.StatusNotFound, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusForbidden, false},
		{http.StatusInternalServerError, false},
	} {
		srv.set(tt.code, "")
		_, err := m.Demand(context.Background(), web)
		if err == nil || errors.Is(err, ErrMetricsUnavailable) != tt.unavailable {
			t.Errorf("HTTP %d: %v, want unavailable %v", tt.code, err, tt.unavailable)
		}
	}
	srv.set(0, "{not json")
	if _, err := m.Demand(context.Background(), web); err == nil || errors.Is(err, ErrMetricsUnavailable) {
		t.Errorf("a broken body: %v", err)
	}
}
