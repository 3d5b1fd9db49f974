package control

import (
	"slices"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/scale"
)

func TestStartupTimesMedian(t *testing.T) {
	var none *StartupTimes
	none.Observe(v1alpha1.TierVM, time.Second) // a nil StartupTimes records nothing, without a panic
	if d, n := none.Median(v1alpha1.TierVM); d != 0 || n != 0 {
		t.Errorf("nil Median = %v, %d", d, n)
	}
	s := NewStartupTimes()
	if d, n := s.Median(v1alpha1.TierContainer); d != 0 || n != 0 {
		t.Errorf("empty Median = %v, %d", d, n)
	}
	for _, ms := range []int{900, 100, 500} {
		s.Observe(v1alpha1.TierContainer, time.Duration(ms)*time.Millisecond)
	}
	if d, n := s.Median(v1alpha1.TierContainer); d != 500*time.Millisecond || n != 3 {
		t.Errorf("Median of 100, 500, 900 ms = %v of %d", d, n)
	}
	s.Observe(v1alpha1.TierContainer, 700*time.Millisecond)
	if d, n := s.Median(v1alpha1.TierContainer); d != 600*time.Millisecond || n != 4 {
		t.Errorf("Median of 100, 500, 700, 900 ms = %v of %d", d, n)
	}
	for range 2 * startupSamples {
		s.Observe(v1alpha1.TierVM, 3*time.Second)
	}
	s.Observe(v1alpha1.TierVM, -time.Second) // a clock that went back is not a start-up
	if d, n := s.Median(v1alpha1.TierVM); d != 3*time.Second || n != startupSamples {
		t.Errorf("vm Median = %v of %d, want 3s of the newest %d", d, n, startupSamples)
	}
}

// TestStartupMeasured: an instance without a health check has started when its driver says
// it runs; one with a health check when its first probe passes.
func TestStartupMeasured(t *testing.T) {
	e := newEnv(t)
	e.c.o.Startups = NewStartupTimes()
	var observed []time.Duration
	e.c.o.ObserveStartup = func(tier v1alpha1.Tier, d time.Duration) {
		if tier != v1alpha1.TierContainer {
			t.Errorf("start-up of tier %s, want container", tier)
		}
		observed = append(observed, d)
	}
	e.apply(workload("plain", "1", sleepForever, "Always"), v1alpha1.TierContainer)
	e.reconcile("plain")
	e.apply(withHealth(workload("checked", "1", sleepForever, "Always"), script.Exit(0), 1), v1alpha1.TierContainer)
	e.reconcile("checked") // started; not serving until its probe passes
	if len(observed) != 1 {
		t.Fatalf("start-ups after starting both: %v, want only plain's", observed)
	}
	e.clock.Advance(2 * time.Second)
	e.reconcile("checked") // the first probe passes
	e.clock.Advance(2 * time.Second)
	e.reconcile("checked") // later probes are not start-ups
	if !slices.Equal(observed, []time.Duration{0, 2 * time.Second}) {
		t.Errorf("start-ups %v, want plain's at once and checked's at its first passing probe, 2s", observed)
	}
	if d, n := e.c.o.Startups.Median(v1alpha1.TierContainer); d != time.Second || n != 2 {
		t.Errorf("median %v of %d, want 1s of 2", d, n)
	}
}

// TestLeadFromMeasuredStartup: the scaler provisions the measured start-up plus one
// interval ahead, and says so; before any measurement it takes the benchmarked default.
func TestLeadFromMeasuredStartup(t *testing.T) {
	measured := NewStartupTimes()
	s := NewScaler(ScalerOptions{Interval: 15 * time.Second, Measured: measured})
	w := &v1alpha1.Workload{Status: &v1alpha1.WorkloadStatus{Tier: v1alpha1.TierSandbox}}
	p := scale.Policy{Predictive: true}
	if got, want := s.lead(w, p), scale.DefaultStartup()[v1alpha1.TierSandbox]+15*time.Second; got != want {
		t.Errorf("lead before a measurement = %v, want the default %v", got, want)
	}
	if note := s.leadNote(w, p); !strings.Contains(note, "no sandbox start measured") {
		t.Errorf("note %q", note)
	}
	measured.Observe(v1alpha1.TierSandbox, 1500*time.Millisecond)
	if got := s.lead(w, p); got != 16500*time.Millisecond {
		t.Errorf("lead = %v, want 1.5s measured + 15s", got)
	}
	if note := s.leadNote(w, p); !strings.Contains(note, "1.5s start-up (median of the last 1 sandbox starts on this host)") {
		t.Errorf("note %q", note)
	}
	p.LeadSeconds = 40
	if got := s.lead(w, p); got != 40*time.Second {
		t.Errorf("lead with leadSeconds 40 = %v", got)
	}
}
