package control

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
)

// sampleEvery is the fake usage history's interval, the daemon's.
const sampleEvery = 10 * time.Second

// fakeUsage is a usage history the test writes.
type fakeUsage struct {
	mu     sync.Mutex
	points map[string]map[string][]v1alpha1.UsagePoint // workload -> instance -> samples
}

func (f *fakeUsage) Workload(workload, instance string) v1alpha1.UsageHistory {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := v1alpha1.UsageHistory{Workload: workload, IntervalSeconds: int32(sampleEvery / time.Second)}
	for id, pts := range f.points[workload] {
		if instance == "" || id == instance {
			h.Instances = append(h.Instances, v1alpha1.InstanceUsage{Instance: id, Points: append([]v1alpha1.UsagePoint(nil), pts...)})
		}
	}
	return h
}

func (f *fakeUsage) add(workload, instance string, at time.Time, cores float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.points == nil {
		f.points = map[string]map[string][]v1alpha1.UsagePoint{}
	}
	if f.points[workload] == nil {
		f.points[workload] = map[string][]v1alpha1.UsagePoint{}
	}
	f.points[workload][instance] = append(f.points[workload][instance], v1alpha1.UsagePoint{Time: at, CPUCores: cores})
}

type scalerEnv struct {
	*env
	usage  *fakeUsage
	s      *Scaler
	scaled map[string]int // Scaled events by direction
}

func newScalerEnv(t *testing.T, capacity HostCapacity) *scalerEnv {
	e := &scalerEnv{env: newEnv(t), usage: &fakeUsage{}, scaled: map[string]int{}}
	e.s = NewScaler(ScalerOptions{Store: e.st, Usage: e.usage, Events: e.rec, Clock: e.clock.Now, Capacity: capacity,
		ObserveScaling: func(_, direction string) { e.scaled[direction]++ }})
	return e
}

// scaled is a workload document with spec.scaling.
func scaledDoc(name string, replicas int, scaling string) string {
	cmd, _ := json.Marshal(sleepForever)
	return fmt.Sprintf("apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: %s}\nspec:\n  image: %s\n  replicas: %d\n"+
		"  command: %s\n  resources: {cpu: 500m, memory: 64Mi}\n  scaling: %s\n", name, image, replicas, cmd, scaling)
}

func (e *scalerEnv) start(doc, name string) {
	e.t.Helper()
	e.apply(doc, v1alpha1.TierContainer)
	e.reconcile(name)
}

// tick moves the clock one sample on, samples every running instance of each workload with
// an even share of its total demand (cores), decides, and reconciles.
func (e *scalerEnv) tick(demand map[string]float64) {
	e.t.Helper()
	e.clock.Advance(sampleEvery)
	now := e.clock.Now()
	for name, total := range demand {
		var running []string
		for _, in := range e.status(name).Instances {
			if in.State == "running" {
				running = append(running, in.ID)
			}
		}
		for _, id := range running {
			e.usage.add(name, id, now, total/float64(len(running)))
		}
	}
	if err := e.s.Step(context.Background()); err != nil {
		e.t.Fatalf("step: %v", err)
	}
	for name := range demand {
		e.reconcile(name)
	}
}

func (e *scalerEnv) replicas(name string) int {
	e.t.Helper()
	st := e.status(name)
	if st.Scaling == nil {
		e.t.Fatalf("%s: no status.scaling", name)
	}
	running := 0
	for _, in := range st.Instances {
		if in.State == "running" {
			running++
		}
	}
	if running != int(st.Scaling.Replicas) {
		e.t.Fatalf("%s: %d instances run, status.scaling.replicas is %d", name, running, st.Scaling.Replicas)
	}
	return running
}

func (e *scalerEnv) events(reason string) []objects.Event {
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	var out []objects.Event
	for _, ev := range e.rec.events {
		if ev.Reason == reason {
			out = append(out, ev)
		}
	}
	return out
}

func TestScalerScalesOutOnHighUtilization(t *testing.T) {
	e := newScalerEnv(t, HostCapacity{})
	e.start(scaledDoc("web", 1, "{min: 1, max: 5, targetCPUPercent: 70}"), "web")
	e.tick(map[string]float64{"web": 0.92}) // 184% of 500m against 70%: ceil(1 * 1.84/0.7) = 3
	if n := e.replicas("web"); n != 3 {
		t.Fatalf("%d replicas, want 3", n)
	}
	st := e.status("web")
	ld := st.Scaling.LastDecision
	if ld == nil || ld.From != 1 || ld.To != 3 || ld.Policy != v1alpha1.ScalingReactive || ld.DemandCores != 0.92 || !ld.Time.Equal(e.clock.Now()) {
		t.Fatalf("last decision %+v", ld)
	}
	want := "scaled 1 -> 3: cpu 0.92 cores per replica against a target of 0.35 (70% of 500m)"
	if ld.Reason != want {
		t.Errorf("reason %q, want %q", ld.Reason, want)
	}
	ev := e.events("Scaled")
	if len(ev) != 1 || ev[0].Type != "Normal" || ev[0].Object != "Workload/web" || ev[0].Message != want {
		t.Errorf("Scaled events %+v", ev)
	}
	if e.scaled["out"] != 1 || e.scaled["in"] != 0 {
		t.Errorf("observed %v, want one scale-out", e.scaled)
	}
	// The controller's own status writes keep status.scaling, and spec.replicas is the user's.
	e.reconcile("web")
	w := e.workload("web")
	if w.Status.Scaling == nil || w.Status.Scaling.Replicas != 3 || *w.Spec.Replicas != 1 {
		t.Errorf("after a reconcile: status.scaling %+v, spec.replicas %d", w.Status.Scaling, *w.Spec.Replicas)
	}
}

func TestScalerKeepsCountWithinTolerance(t *testing.T) {
	e := newScalerEnv(t, HostCapacity{})
	e.start(scaledDoc("web", 2, "{min: 1, max: 5, targetCPUPercent: 70}"), "web")
	for range 6 {
		e.tick(map[string]float64{"web": 0.74}) // 0.37 a replica: 74% against 70%, within 10%
	}
	if n := e.replicas("web"); n != 2 {
		t.Errorf("%d replicas, want 2", n)
	}
	if ev := e.events("Scaled"); len(ev) != 0 || e.status("web").Scaling.LastDecision != nil {
		t.Errorf("a decision that kept the count left events %+v or a last decision", ev)
	}
}

// TestScalerScalesInAfterCooldown: the scale-in cooldown is the HPA's scale-down window, so
// a drop in demand removes replicas a cooldown later than it would without one.
func TestScalerScalesInAfterCooldown(t *testing.T) {
	scaleInAfter := func(cooldown int) time.Duration {
		e := newScalerEnv(t, HostCapacity{})
		e.start(scaledDoc("web", 3, fmt.Sprintf("{min: 1, max: 5, targetCPUPercent: 70, scaleInCooldownSeconds: %d}", cooldown)), "web")
		for range 6 {
			e.tick(map[string]float64{"web": 1.05}) // on target: 0.35 a replica
		}
		if n := e.replicas("web"); n != 3 {
			t.Fatalf("%d replicas before the drop, want 3", n)
		}
		dropped := e.clock.Now()
		for range 60 {
			e.tick(map[string]float64{"web": 0.1})
			if n := e.replicas("web"); n < 3 {
				ld := e.status("web").Scaling.LastDecision
				if ld == nil || ld.From != 3 || !strings.HasPrefix(ld.Reason, fmt.Sprintf("scaled 3 -> %d: cpu ", n)) || e.scaled["in"] != 1 {
					t.Errorf("last decision %+v, observed %v", ld, e.scaled)
				}
				return e.clock.Now().Sub(dropped)
			}
		}
		t.Fatalf("cooldown %d s: never scaled in", cooldown)
		return 0
	}
	without, with := scaleInAfter(0), scaleInAfter(120)
	if d := with - without; d < 120*time.Second || d > 120*time.Second+sampleEvery {
		t.Errorf("scaled in %s after the drop without a cooldown, %s with 120 s: want 120 s more", without, with)
	}
}

func TestScalerClamps(t *testing.T) {
	t.Run("max", func(t *testing.T) {
		e := newScalerEnv(t, HostCapacity{})
		e.start(scaledDoc("web", 1, "{min: 1, max: 2, targetCPUPercent: 70}"), "web")
		e.tick(map[string]float64{"web": 2})
		e.tick(map[string]float64{"web": 2})
		if n := e.replicas("web"); n != 2 {
			t.Fatalf("%d replicas, want max 2", n)
		}
		if ld := e.status("web").Scaling.LastDecision; !strings.HasSuffix(ld.Reason, "; capped at max 2") {
			t.Errorf("reason %q does not say max capped it", ld.Reason)
		}
	})
	t.Run("host capacity", func(t *testing.T) {
		e := newScalerEnv(t, HostCapacity{CPUMilli: 1600})
		e.start(workload("other", "1", sleepForever, "Always"), "other") // the default request: 100m
		e.start(scaledDoc("web", 1, "{min: 1, max: 5, targetCPUPercent: 70}"), "web")
		for range 3 {
			e.tick(map[string]float64{"web": 2})
		}
		// (1600m - 100m) / 500m = 3 replicas fit.
		if n := e.replicas("web"); n != 3 {
			t.Fatalf("%d replicas, want the 3 that fit", n)
		}
		ld := e.status("web").Scaling.LastDecision
		if ld.To != 3 || !strings.Contains(ld.Reason, "the host's capacity holds 3 (cpu: 100m of 1600m requested by other workloads, 500m a replica)") {
			t.Errorf("last decision %+v", ld)
		}
		if ev := e.events("Scaled"); len(ev) != 1 {
			t.Errorf("%d Scaled events, want 1 (no change once at capacity)", len(ev))
		}
	})
}

// TestScalerPredictiveLeadsDemand: on a rising series, the predictive twin scales out while
// the measured demand still fits its replicas, before the reactive twin does.
func TestScalerPredictiveLeadsDemand(t *testing.T) {
	e := newScalerEnv(t, HostCapacity{})
	e.start(scaledDoc("pre", 2, "{min: 1, max: 8, targetCPUPercent: 70, predictive: true, leadSeconds: 60}"), "pre")
	e.start(scaledDoc("re", 2, "{min: 1, max: 8, targetCPUPercent: 70}"), "re")
	demand := 0.5 // two replicas serve 0.7 cores at the target
	for range 12 {
		e.tick(map[string]float64{"pre": demand, "re": demand})
	}
	if e.replicas("pre") != 2 || e.replicas("re") != 2 {
		t.Fatal("a flat demand changed the count")
	}
	var preAt, reAt time.Duration
	var preDemand float64
	began := e.clock.Now()
	for k := 0; k < 40 && (preAt == 0 || reAt == 0); k++ {
		demand += 0.02
		e.tick(map[string]float64{"pre": demand, "re": demand})
		if preAt == 0 && e.replicas("pre") > 2 {
			preAt, preDemand = e.clock.Now().Sub(began), demand
		}
		if reAt == 0 && e.replicas("re") > 2 {
			reAt = e.clock.Now().Sub(began)
		}
	}
	if preAt == 0 || reAt == 0 || preAt >= reAt {
		t.Fatalf("predictive scaled out after %s, reactive after %s: want predictive first", preAt, reAt)
	}
	if preDemand > 0.7 {
		t.Errorf("predictive scaled out at %.2f cores, beyond what 2 replicas serve (0.70): not ahead of demand", preDemand)
	}
	var ld *v1alpha1.ScalingDecision
	for _, ev := range e.events("Scaled") {
		if ev.Object == "Workload/pre" {
			ld = e.status("pre").Scaling.LastDecision
			if !strings.Contains(ev.Message, "; predictive: forecast ") {
				t.Errorf("the predictive scale-out's event %q does not give the forecast", ev.Message)
			}
			break
		}
	}
	if ld == nil || ld.Policy != v1alpha1.ScalingPredictive || ld.LeadSeconds != 60 || ld.ForecastCores <= 0.7 {
		t.Errorf("predictive last decision %+v", ld)
	}
	t.Logf("predictive scaled out %s into the ramp (at %.2f cores), reactive %s", preAt, preDemand, reAt)
}

// TestScalerPredictiveHoldsWhileRising: utilization is low enough for the reactive twin to
// scale in, but the forecast rises, so the predictive twin keeps its replicas.
func TestScalerPredictiveHoldsWhileRising(t *testing.T) {
	e := newScalerEnv(t, HostCapacity{})
	e.start(scaledDoc("pre", 4, "{min: 1, max: 8, targetCPUPercent: 70, predictive: true, leadSeconds: 60, scaleInCooldownSeconds: 0}"), "pre")
	e.start(scaledDoc("re", 4, "{min: 1, max: 8, targetCPUPercent: 70, scaleInCooldownSeconds: 0}"), "re")
	demand := 0.4 // four replicas serve 1.4 cores at the target
	// The hour of history so far: the ramp, enough of it for a forecast.
	now := e.clock.Now()
	for k := 10; k > 0; k-- {
		for _, name := range []string{"pre", "re"} {
			for slot := range 4 {
				e.usage.add(name, InstanceID(name, slot), now.Add(-time.Duration(k)*sampleEvery), (demand-0.02*float64(k))/4)
			}
		}
	}
	for range 16 {
		demand += 0.02
		e.tick(map[string]float64{"pre": demand, "re": demand})
		if n := e.replicas("pre"); n < 4 {
			t.Fatalf("predictive scaled in to %d at %.2f cores while demand rose", n, demand)
		}
	}
	if n := e.replicas("re"); n >= 4 {
		t.Errorf("reactive kept %d replicas at %.2f cores: the test does not show what predictive prevents", n, demand)
	}
}

// TestScalerPredictiveFallsBack: with too few samples for a forecast, predictive scaling
// acts reactively and says so.
func TestScalerPredictiveFallsBack(t *testing.T) {
	e := newScalerEnv(t, HostCapacity{})
	e.start(scaledDoc("web", 1, "{min: 1, max: 5, targetCPUPercent: 70, predictive: true}"), "web")
	e.tick(map[string]float64{"web": 0.92})
	ld := e.status("web").Scaling.LastDecision
	if ld == nil || ld.To != 3 || ld.Policy != v1alpha1.ScalingReactive || !strings.Contains(ld.Reason, "predictive: 1 usage samples, a forecast needs 8: reactive only") {
		t.Errorf("last decision %+v", ld)
	}
}

func TestScalerWarnsOnceWithoutCPURequest(t *testing.T) {
	e := newScalerEnv(t, HostCapacity{})
	e.apply(scaledDoc("web", 1, "{min: 1, max: 5}"), v1alpha1.TierContainer)
	// As stored by an older daemon, before resources.cpu had a default.
	rec, err := e.st.Get(context.Background(), v1alpha1.KindWorkload, "web")
	if err != nil {
		t.Fatal(err)
	}
	w, err := objects.Workload(rec)
	if err != nil {
		t.Fatal(err)
	}
	w.Spec.Resources.CPU = resource.Quantity{}
	next, err := objects.Record(v1alpha1.KindWorkload, w.Metadata, w.Spec, w.Status)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Update(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	e.reconcile("web")
	for range 4 {
		e.tick(map[string]float64{"web": 3})
	}
	ev := e.events("CannotScale")
	if len(ev) != 1 || ev[0].Type != "Warning" || !strings.Contains(ev[0].Message, "set resources.cpu") {
		t.Errorf("CannotScale events %+v, want one Warning saying what to set", ev)
	}
	if st := e.status("web"); st.Scaling != nil || len(st.Instances) != 1 {
		t.Errorf("a workload without a cpu request was scaled: %+v", st.Scaling)
	}
}

// TestScalerClearsStatusWithoutScaling: removing spec.scaling hands the count back to
// spec.replicas.
func TestScalerClearsStatusWithoutScaling(t *testing.T) {
	e := newScalerEnv(t, HostCapacity{})
	e.start(scaledDoc("web", 1, "{min: 1, max: 5}"), "web")
	e.tick(map[string]float64{"web": 2})
	if n := e.replicas("web"); n == 1 {
		t.Fatal("no scale-out")
	}
	e.apply(workload("web", "1", sleepForever, "Always"), v1alpha1.TierContainer)
	e.tick(map[string]float64{"web": 2})
	if st := e.status("web"); st.Scaling != nil || len(st.Instances) != 1 {
		t.Errorf("without spec.scaling: status.scaling %+v, %d instances (want none and 1)", st.Scaling, len(st.Instances))
	}
}

func (e *scalerEnv) workload(name string) *v1alpha1.Workload {
	e.t.Helper()
	rec, err := e.st.Get(context.Background(), v1alpha1.KindWorkload, name)
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := objects.Workload(rec)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}
