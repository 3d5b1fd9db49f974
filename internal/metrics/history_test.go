package metrics_test

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/metrics"
)

func TestHistory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	started := e.clock.Now()
	e.start(t, "web-0", "web", 64<<20)
	e.start(t, "web-1", "web", 0)
	e.workload(t, "web", "front", 3, v1alpha1.WorkloadStatus{Tier: v1alpha1.TierContainer, Instances: []v1alpha1.Instance{
		{ID: "web-0", Tier: v1alpha1.TierContainer, State: "running", StartedAt: &started},
		{ID: "web-1", Tier: v1alpha1.TierContainer, State: "running"},
		{ID: "web-2", Tier: v1alpha1.TierContainer, State: "exited"},
	}})
	h := metrics.NewHistory(metrics.HistoryOptions{Store: e.st, Drivers: e.reg, Interval: 10 * time.Second, Length: 4, Clock: e.clock.Now})

	e.clock.Advance(5 * time.Second)
	h.Sample(ctx)
	got := h.Workload("web", "")
	if got.IntervalSeconds != 10 || len(got.Instances) != 1 || got.Instances[0].Instance != "web-0" || len(got.Instances[0].Points) != 1 {
		t.Fatalf("after one sample: %+v; want one point for web-0 only (its start time is known; web-1's is not, web-2 does not run)", got)
	}
	for range 6 {
		e.clock.Advance(10 * time.Second)
		h.Sample(ctx)
	}
	got = h.Workload("web", "")
	if len(got.Instances) != 2 {
		t.Fatalf("instances %+v, want web-0 and web-1", got.Instances)
	}
	for _, in := range got.Instances {
		if len(in.Points) != 4 {
			t.Errorf("%s keeps %d points, want the last 4", in.Instance, len(in.Points))
		}
		for i, p := range in.Points {
			// The fake driver keeps one CPU busy per instance.
			if math.Abs(p.CPUCores-1) > 1e-9 {
				t.Errorf("%s point %d: %v cores, want 1", in.Instance, i, p.CPUCores)
			}
			if i > 0 && !p.Time.After(in.Points[i-1].Time) {
				t.Errorf("%s points not oldest first: %v then %v", in.Instance, in.Points[i-1].Time, p.Time)
			}
		}
		if last := in.Points[len(in.Points)-1]; !last.Time.Equal(e.clock.Now().UTC()) {
			t.Errorf("%s newest point at %v, want the last sample's time %v", in.Instance, last.Time, e.clock.Now())
		}
	}
	if mem := got.Instances[0].Points[0].MemoryBytes; mem != 64<<20 {
		t.Errorf("web-0 memory %d, want its limit %d (the fake driver's model)", mem, 64<<20)
	}
	if one := h.Workload("web", "web-1"); len(one.Instances) != 1 || one.Instances[0].Instance != "web-1" {
		t.Errorf("filtered by instance: %+v", one.Instances)
	}
	if none := h.Workload("nope", ""); none.Instances == nil || len(none.Instances) != 0 {
		t.Errorf("unknown workload: %+v, want an empty (not null) list", none.Instances)
	}

	// An instance that stops running is kept for the history's span (4 x 10 s), then dropped.
	if err := e.drv.Stop(ctx, "web-1", time.Second); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(30 * time.Second)
	h.Sample(ctx)
	if got := h.Workload("web", "web-1"); len(got.Instances) != 1 {
		t.Errorf("web-1 dropped 30 s after it stopped; want it kept for 40 s")
	}
	e.clock.Advance(20 * time.Second)
	h.Sample(ctx)
	if got := h.Workload("web", "web-1"); len(got.Instances) != 0 {
		t.Errorf("web-1 still kept 50 s after it stopped: %+v", got.Instances)
	}
}

// BenchmarkHistorySample measures one sampling round over 200 running instances, and
// the memory an hour of history takes per instance.
func BenchmarkHistorySample(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	const n = 200
	var ins []v1alpha1.Instance
	started := e.clock.Now()
	for i := range n {
		id := "app-" + strconv.Itoa(i)
		e.start(b, id, "app", 0)
		ins = append(ins, v1alpha1.Instance{ID: id, Tier: v1alpha1.TierContainer, State: "running", StartedAt: &started})
	}
	e.workload(b, "app", "", n, v1alpha1.WorkloadStatus{Tier: v1alpha1.TierContainer, Instances: ins})
	h := metrics.NewHistory(metrics.HistoryOptions{Store: e.st, Drivers: e.reg, Clock: e.clock.Now})
	b.ResetTimer()
	for b.Loop() {
		e.clock.Advance(10 * time.Second)
		h.Sample(ctx)
	}
}
