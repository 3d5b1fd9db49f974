package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/metrics"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/fake"
	"strata.dev/strata/internal/store"
)

const image = "localhost/app:1"

type env struct {
	st    *store.Store
	path  string
	clock *fake.ManualClock
	drv   *fake.Driver
	reg   *runtime.Registry
}

func newEnv(t testing.TB) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clock := fake.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	host := fake.NewHost(fake.HostOptions{Clock: clock})
	d, err := fake.New(fake.Options{Host: host, Tiers: []v1alpha1.Tier{v1alpha1.TierContainer, v1alpha1.TierSandbox}, Images: []string{image}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := runtime.NewRegistry(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	return &env{st: st, path: path, clock: clock, drv: d, reg: reg}
}

// workload stores a workload with the status a controller would have written.
func (e *env) workload(t testing.TB, name, segment string, replicas int32, status v1alpha1.WorkloadStatus) {
	t.Helper()
	spec := v1alpha1.WorkloadSpec{Image: image, Replicas: &replicas, Segment: segment}
	rec, err := objects.Record(v1alpha1.KindWorkload, v1alpha1.ObjectMeta{Name: name}, spec, status)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}

// start runs an instance on the fake driver.
func (e *env) start(t testing.TB, id, workload string, memory int64) {
	t.Helper()
	_, err := e.drv.Start(context.Background(), runtime.InstanceSpec{ID: id, Workload: workload, Tier: v1alpha1.TierContainer,
		Image: image, MemoryBytes: memory, LogPath: filepath.Join(t.TempDir(), id+".log")})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCollector(t *testing.T) {
	e := newEnv(t)
	e.start(t, "web-0", "web", 64<<20)
	e.start(t, "web-1", "web", 0)
	e.clock.Advance(90 * time.Second)
	e.workload(t, "web", "front", 3, v1alpha1.WorkloadStatus{Tier: v1alpha1.TierContainer, Instances: []v1alpha1.Instance{
		{ID: "web-0", Tier: v1alpha1.TierContainer, State: "running", Restarts: 2},
		{ID: "web-1", Tier: v1alpha1.TierContainer, State: "running"},
		{ID: "web-2", Tier: v1alpha1.TierContainer, State: "exited", Restarts: 5},
	}})
	// Not yet assessed: no tier, no instances.
	e.workload(t, "batch", "back", 1, v1alpha1.WorkloadStatus{})

	c := metrics.NewCollector(e.st, e.reg, time.Second, nil)
	want := `
# HELP strata_instance_cpu_seconds_total CPU time the instance has used since it last started, as its driver measures it.
# TYPE strata_instance_cpu_seconds_total counter
strata_instance_cpu_seconds_total{instance="web-0",segment="front",tier="container",workload="web"} 90
strata_instance_cpu_seconds_total{instance="web-1",segment="front",tier="container",workload="web"} 90
# HELP strata_instance_memory_bytes Memory the instance holds now, as its driver measures it.
# TYPE strata_instance_memory_bytes gauge
strata_instance_memory_bytes{instance="web-0",segment="front",tier="container",workload="web"} 6.7108864e+07
strata_instance_memory_bytes{instance="web-1",segment="front",tier="container",workload="web"} 4.194304e+06
# HELP strata_instance_restarts_total Times strata restarted the instance's slot (status.instances[].restarts).
# TYPE strata_instance_restarts_total counter
strata_instance_restarts_total{instance="web-0",segment="front",tier="container",workload="web"} 2
strata_instance_restarts_total{instance="web-1",segment="front",tier="container",workload="web"} 0
strata_instance_restarts_total{instance="web-2",segment="front",tier="container",workload="web"} 5
# HELP strata_instance_up 1 while the instance runs, 0 otherwise.
# TYPE strata_instance_up gauge
strata_instance_up{instance="web-0",segment="front",tier="container",workload="web"} 1
strata_instance_up{instance="web-1",segment="front",tier="container",workload="web"} 1
strata_instance_up{instance="web-2",segment="front",tier="container",workload="web"} 0
# HELP strata_workload_info Always 1; labels say the workload's tier (empty until assessed) and segment.
# TYPE strata_workload_info gauge
strata_workload_info{segment="back",tier="",workload="batch"} 1
strata_workload_info{segment="front",tier="container",workload="web"} 1
# HELP strata_workload_replicas_desired Replicas the workload should run: spec.replicas, or with spec.scaling the scaler's count (status.scaling.replicas).
# TYPE strata_workload_replicas_desired gauge
strata_workload_replicas_desired{workload="batch"} 1
strata_workload_replicas_desired{workload="web"} 3
# HELP strata_workload_replicas_running Instances of the workload that run.
# TYPE strata_workload_replicas_running gauge
strata_workload_replicas_running{workload="batch"} 0
strata_workload_replicas_running{workload="web"} 2
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// TestCollectorScaledDesired: with spec.scaling, the desired count is the scaler's
// (status.scaling.replicas), or spec.replicas within [min, max] before its first decision.
func TestCollectorScaledDesired(t *testing.T) {
	e := newEnv(t)
	for _, w := range []struct {
		name     string
		replicas int32
		status   v1alpha1.WorkloadStatus
	}{
		{"scaled", 1, v1alpha1.WorkloadStatus{Scaling: &v1alpha1.ScalingStatus{Replicas: 4}}},
		{"undecided", 9, v1alpha1.WorkloadStatus{}},
	} {
		replicas := w.replicas
		spec := v1alpha1.WorkloadSpec{Image: image, Replicas: &replicas, Scaling: &v1alpha1.Scaling{Min: 2, Max: 5}}
		rec, err := objects.Record(v1alpha1.KindWorkload, v1alpha1.ObjectMeta{Name: w.name}, spec, w.status)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.Create(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	c := metrics.NewCollector(e.st, e.reg, time.Second, nil)
	want := `
# HELP strata_workload_replicas_desired Replicas the workload should run: spec.replicas, or with spec.scaling the scaler's count (status.scaling.replicas).
# TYPE strata_workload_replicas_desired gauge
strata_workload_replicas_desired{workload="scaled"} 4
strata_workload_replicas_desired{workload="undecided"} 5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "strata_workload_replicas_desired"); err != nil {
		t.Fatal(err)
	}
}

// TestCollectorStaleStatus covers a status that says running while the driver has
// already seen the instance end, or never had it: up and restarts come from the
// status, usage is left out.
func TestCollectorStaleStatus(t *testing.T) {
	e := newEnv(t)
	e.start(t, "app-0", "app", 0)
	if err := e.drv.Stop(context.Background(), "app-0", time.Second); err != nil {
		t.Fatal(err)
	}
	e.workload(t, "app", "default", 2, v1alpha1.WorkloadStatus{Tier: v1alpha1.TierContainer, Instances: []v1alpha1.Instance{
		{ID: "app-0", Tier: v1alpha1.TierContainer, State: "running"},
		{ID: "app-1", Tier: v1alpha1.TierContainer, State: "running"},
	}})
	c := metrics.NewCollector(e.st, e.reg, time.Second, nil)
	if n := testutil.CollectAndCount(c, "strata_instance_cpu_seconds_total", "strata_instance_memory_bytes"); n != 0 {
		t.Errorf("usage series = %d, want 0", n)
	}
	if n := testutil.CollectAndCount(c, "strata_instance_up"); n != 2 {
		t.Errorf("strata_instance_up series = %d, want 2", n)
	}
}

func TestMetricsHandlerAndMiddleware(t *testing.T) {
	e := newEnv(t)
	m := metrics.New(metrics.Options{Store: e.st, StorePath: e.path, Drivers: e.reg})
	depth := 3
	m.WatchQueue(func() int { return depth })
	m.ObserveReconcile(20 * time.Millisecond)
	m.ObserveScaling("web", "out")
	m.ObserveScaling("web", "out")
	m.ObserveScaling("web", "in")

	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{name}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.Handle("GET /metrics", m.Handler())
	srv := httptest.NewServer(m.Middleware(mux))
	defer srv.Close()
	for _, p := range []string{"/things/a", "/things/b", "/ok", "/nowhere"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	want := `
# HELP strata_api_requests_total API requests answered, by route (the pattern that matched) and status code.
# TYPE strata_api_requests_total counter
strata_api_requests_total{code="200",route="GET /ok"} 1
strata_api_requests_total{code="404",route="unmatched"} 1
strata_api_requests_total{code="418",route="GET /things/{name}"} 2
# HELP strata_reconcile_queue_depth Workloads scheduled for a reconcile, now or after a delay.
# TYPE strata_reconcile_queue_depth gauge
strata_reconcile_queue_depth 3
# HELP strata_scaling_decisions_total Changes of a workload's replica count by the scaler, by direction (out: more replicas, in: fewer), since the daemon started.
# TYPE strata_scaling_decisions_total counter
strata_scaling_decisions_total{direction="in",workload="web"} 1
strata_scaling_decisions_total{direction="out",workload="web"} 2
`
	reg := m.Registry()
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "strata_api_requests_total", "strata_reconcile_queue_depth", "strata_scaling_decisions_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "strata_api_request_duration_seconds", "strata_reconcile_duration_seconds"); err != nil || n != 4 {
		t.Errorf("histogram series = %d, %v; want 3 routes + 1", n, err)
	}
	fi, err := os.Stat(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if got := gathered(t, reg, "strata_store_size_bytes"); got != float64(fi.Size()) {
		t.Errorf("strata_store_size_bytes = %v, want %d", got, fi.Size())
	}

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
}

// gathered returns the value of the gauge name (without labels) in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s in the registry", name)
	return 0
}

// TestCollectorNodeVMs: an instance's usage comes from the driver its status names
// (the node VM driver for a replica in a node VM), not from its tier's driver on the
// host, which does not know it; the history the scaler reads has it too.
func TestCollectorNodeVMs(t *testing.T) {
	e := newEnv(t)
	nodeVMs, err := fake.New(fake.Options{Host: e.drv.Host(), Name: "nodevm", Tiers: []v1alpha1.Tier{v1alpha1.TierContainer}, Images: []string{image}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := e.reg.WithNodeVMs(nodeVMs)
	if err != nil {
		t.Fatal(err)
	}
	started := e.clock.Now()
	if _, err := nodeVMs.Start(context.Background(), runtime.InstanceSpec{ID: "shop-0", Workload: "shop", Tier: v1alpha1.TierContainer,
		Image: image, MemoryBytes: 32 << 20, LogPath: filepath.Join(t.TempDir(), "shop-0.log")}); err != nil {
		t.Fatal(err)
	}
	e.start(t, "web-0", "web", 64<<20)
	e.clock.Advance(30 * time.Second)
	e.workload(t, "shop", "default", 1, v1alpha1.WorkloadStatus{Tier: v1alpha1.TierContainer, Instances: []v1alpha1.Instance{
		{ID: "shop-0", Tier: v1alpha1.TierContainer, Driver: "nodevm", State: "running", StartedAt: &started},
	}})
	e.workload(t, "web", "default", 1, v1alpha1.WorkloadStatus{Tier: v1alpha1.TierContainer, Instances: []v1alpha1.Instance{
		{ID: "web-0", Tier: v1alpha1.TierContainer, Driver: "fake", State: "running", StartedAt: &started},
	}})
	c := metrics.NewCollector(e.st, reg, time.Second, nil)
	want := `
# HELP strata_instance_memory_bytes Memory the instance holds now, as its driver measures it.
# TYPE strata_instance_memory_bytes gauge
strata_instance_memory_bytes{instance="shop-0",segment="default",tier="container",workload="shop"} 3.3554432e+07
strata_instance_memory_bytes{instance="web-0",segment="default",tier="container",workload="web"} 6.7108864e+07
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "strata_instance_memory_bytes"); err != nil {
		t.Fatal(err)
	}

	h := metrics.NewHistory(metrics.HistoryOptions{Store: e.st, Drivers: reg, Interval: 10 * time.Second, Length: 4, Clock: e.clock.Now})
	h.Sample(context.Background())
	if got := h.Workload("shop", ""); len(got.Instances) != 1 || len(got.Instances[0].Points) != 1 || got.Instances[0].Points[0].MemoryBytes != 32<<20 {
		t.Errorf("history of the replica in a node VM: %+v, want one point of 32 MiB", got.Instances)
	}
}
