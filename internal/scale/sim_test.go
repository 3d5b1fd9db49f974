package scale

import (
	"math"
	"reflect"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// TestSimulateByHand replays two 5-minute intervals whose demand doubles, with numbers worked
// out by hand: one replica is 1 core at 70% (0.7 cores), so 7 cores need 10 replicas and 14
// cores 20; the tier starts in 10 s and decisions come 10 s into an interval.
func TestSimulateByHand(t *testing.T) {
	tr := &Trace{Start: time.Unix(0, 0), Step: 5 * time.Minute, CPU: []float64{7, 14}}
	rep, err := Simulate(SimInput{
		Trace:      tr,
		Policy:     PolicyFor(&v1alpha1.Scaling{Max: 100}),
		ReplicaCPU: 1,
		Tier:       v1alpha1.TierContainer,
		Startup:    map[v1alpha1.Tier]time.Duration{v1alpha1.TierContainer: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ slack, short, hours float64 }{
		// The HPA sees 14 cores at t=310 s and adds 10 replicas, ready at 320 s: 20 s of the
		// 600 short. Replica-seconds: 10*300 + 10*10 + 20*290 = 8,900.
		Reactive: {0, 100 * 20.0 / 600, 8900.0 / 3600},
		// The naive forecast saw 7 cores; the floor catches up exactly as the HPA does.
		Predictive: {0, 100 * 20.0 / 600, 8900.0 / 3600},
		// The oracle starts 10 replicas at 290 s: 10*290 + 20*10 + 20*300 = 9,100.
		Oracle: {0, 0, 9100.0 / 3600},
	}
	for _, r := range rep.Policies {
		w := want[r.Name]
		if !near(r.SlackPercent, w.slack) || !near(r.ShortagePercent, w.short) || !near(r.ReplicaHours, w.hours) {
			t.Errorf("%s: slack %v%% shortage %v%% replica-hours %v, want %v %v %v",
				r.Name, r.SlackPercent, r.ShortagePercent, r.ReplicaHours, w.slack, w.short, w.hours)
		}
	}
	if got := rep.Policies[0].Short; !near(got[0], 0) || !near(got[1], 20.0/300) {
		t.Errorf("reactive shortage by interval %v, want [0 0.0667]", got)
	}
}

// TestSimulateScaleInWaits checks the HPA's scale-down window in the simulator: demand halves
// and the reactive policy keeps its replicas for one more 5-minute interval.
func TestSimulateScaleInWaits(t *testing.T) {
	tr := &Trace{Start: time.Unix(0, 0), Step: 5 * time.Minute, CPU: []float64{14, 7, 7, 7}}
	rep, err := Simulate(SimInput{Trace: tr, Policy: PolicyFor(&v1alpha1.Scaling{Max: 100}), ReplicaCPU: 1, Tier: v1alpha1.TierContainer})
	if err != nil {
		t.Fatal(err)
	}
	reactive := rep.Policies[0]
	// Capacity 14 for the first two intervals (the 20 of t=10 s is in the window at
	// t=310 s), then 7 from 10 s into the third.
	want := []float64{14, 14, 7 + 7*10.0/300, 7}
	for i := range want {
		if !near(reactive.Capacity[i], want[i]) {
			t.Fatalf("capacity by interval %v, want %v", reactive.Capacity, want)
		}
	}
	if oracle := rep.Policies[2]; !near(oracle.Capacity[1], 7) || oracle.ShortagePercent != 0 {
		t.Errorf("oracle capacity %v, shortage %v", oracle.Capacity, oracle.ShortagePercent)
	}
}

func TestSimulateTiersAndSeeds(t *testing.T) {
	run := func(tier v1alpha1.Tier, seed int64) *Report {
		rep, err := Simulate(SimInput{Trace: Synthetic(4, 5*time.Minute, seed, SynthOptions{}),
			Policy: PolicyFor(&v1alpha1.Scaling{Max: 500}), ReplicaCPU: 0.5, Tier: tier})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	a, b := run(v1alpha1.TierContainer, 3), run(v1alpha1.TierContainer, 3)
	if !reflect.DeepEqual(a, b) {
		t.Error("the same seed gave different reports")
	}
	vm := run(v1alpha1.TierVM, 3)
	if vm.Startup <= a.Startup || vm.Lead <= a.Lead {
		t.Errorf("vm start-up %v lead %v, container %v %v: want the VM slower", vm.Startup, vm.Lead, a.Startup, a.Lead)
	}
	if vm.Policies[0].ShortagePercent <= a.Policies[0].ShortagePercent {
		t.Errorf("reactive shortage: vm %v%%, container %v%%: a slower start-up must cost more", vm.Policies[0].ShortagePercent, a.Policies[0].ShortagePercent)
	}
	for _, rep := range []*Report{a, vm} {
		oracle := rep.Policies[2]
		if oracle.ShortagePercent != 0 {
			t.Errorf("oracle shortage %v%%", oracle.ShortagePercent)
		}
		for _, r := range rep.Policies[:2] {
			if r.SlackPercent < oracle.SlackPercent-1e-9 {
				t.Errorf("%s slack %v%% below the oracle's %v%%", r.Name, r.SlackPercent, oracle.SlackPercent)
			}
		}
	}
}

func TestSimulateErrors(t *testing.T) {
	tr := &Trace{Start: time.Unix(0, 0), Step: time.Minute, CPU: []float64{1, 2}}
	ok := SimInput{Trace: tr, Policy: PolicyFor(nil), ReplicaCPU: 1, Tier: v1alpha1.TierVM}
	tests := []struct {
		name   string
		change func(*SimInput)
	}{
		{"empty trace", func(in *SimInput) { in.Trace = &Trace{Step: time.Minute} }},
		{"no cpu", func(in *SimInput) { in.ReplicaCPU = 0 }},
		{"unknown tier", func(in *SimInput) { in.Tier = "kvm" }},
		{"max below min", func(in *SimInput) { in.Policy.Max = 0 }},
	}
	if _, err := Simulate(ok); err != nil {
		t.Fatalf("valid input: %v", err)
	}
	for _, tt := range tests {
		in := ok
		tt.change(&in)
		if _, err := Simulate(in); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestSyntheticShape(t *testing.T) {
	tr := Synthetic(14, 5*time.Minute, 1, SynthOptions{})
	if len(tr.CPU) != 14*288 || tr.Start.Weekday() != time.Monday {
		t.Fatalf("%d points from %v", len(tr.CPU), tr.Start)
	}
	perDay := 288
	dayMean := func(d int) float64 { return mean(tr.CPU[d*perDay : (d+1)*perDay]) }
	if sat, fri := dayMean(5), dayMean(4); sat > 0.85*fri {
		t.Errorf("Saturday %.1f cores vs Friday %.1f: want the weekend dip", sat, fri)
	}
	if w2, w1 := mean(tr.CPU[7*perDay:]), mean(tr.CPU[:7*perDay]); w2 <= w1 {
		t.Errorf("week 2 %.1f vs week 1 %.1f: want growth", w2, w1)
	}
	afternoon, night := tr.CPU[14*12], tr.CPU[3*12] // Monday 14:00 and 03:00
	if afternoon < 2*night {
		t.Errorf("14:00 %.1f vs 03:00 %.1f: want the daily cycle", afternoon, night)
	}
	if !reflect.DeepEqual(tr, Synthetic(14, 5*time.Minute, 1, SynthOptions{})) {
		t.Error("the same seed gave different traces")
	}
	if reflect.DeepEqual(tr.CPU, Synthetic(14, 5*time.Minute, 2, SynthOptions{}).CPU) {
		t.Error("different seeds gave the same trace")
	}
}
