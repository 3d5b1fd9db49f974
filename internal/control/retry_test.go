package control

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/events"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/fake"
	"strata.dev/strata/internal/store"
)

// countingRecorder counts the events it passes on, by reason.
type countingRecorder struct {
	next Recorder
	mu   sync.Mutex
	n    map[string]int
}

func (c *countingRecorder) Record(ctx context.Context, e objects.Event) {
	c.mu.Lock()
	c.n[e.Reason]++
	c.mu.Unlock()
	c.next.Record(ctx, e)
}

func (c *countingRecorder) count(reason string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[reason]
}

// A workload whose start keeps failing is started again only when its backoff ends,
// whatever the resync and its own status writes do; its FailedStart events are one
// series. Time is scaled: a backoff base of 50 ms stands for 1 s, so the 3 s the test
// runs stand for a minute (backoffs 1, 2, 4, 8, 16, 32 s: at most 7 attempts).
// A change to the workload acts at once.
func TestFailedStartBacksOff(t *testing.T) {
	const unit = 50 * time.Millisecond
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	d, err := fake.New(fake.Options{Host: fake.NewHost(fake.HostOptions{}), Tiers: []v1alpha1.Tier{v1alpha1.TierContainer}, Images: []string{image}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := runtime.NewRegistry(d)
	if err != nil {
		t.Fatal(err)
	}
	rec := &countingRecorder{next: events.New(st, nil, 0, nil), n: map[string]int{}}
	c := New(Options{Store: st, Drivers: reg, Events: rec, DataDir: t.TempDir(),
		Resync: 10 * time.Millisecond, RestartBackoff: unit, MaxRestartBackoff: 300 * unit})
	e := &env{t: t, st: st}
	e.apply(strings.Replace(workload("web", "1", sleepForever, "Always"), image, "localhost/missing:1", 1), v1alpha1.TierContainer)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})

	time.Sleep(60 * unit)
	attempts := rec.count("FailedStart")
	if attempts < 2 || attempts > 7 {
		t.Errorf("%d start attempts in 60 backoff units, want 2 to 7", attempts)
	}
	recs, _, err := st.List(ctx, objects.KindEvent)
	if err != nil {
		t.Fatal(err)
	}
	var series []*objects.Event
	for _, r := range recs {
		ev, err := objects.EventFrom(r)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Reason == "FailedStart" {
			series = append(series, ev)
		}
	}
	if len(series) != 1 || series[0].Count != attempts {
		t.Errorf("FailedStart stored as %d events (first count %d), want one series of %d", len(series), countOf(series), attempts)
	}

	// The fix is applied at once, not when the backoff (32 units now) ends.
	e.apply(workload("web", "1", sleepForever, "Always"), v1alpha1.TierContainer)
	deadline := time.Now().Add(10 * unit)
	for {
		if s := e.status("web"); s.Phase == v1alpha1.PhaseRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fixed workload is %s 10 units after the change: the change waited for the backoff", states(e.status("web")))
		}
		time.Sleep(unit / 5)
	}
}

func countOf(evs []*objects.Event) int {
	if len(evs) == 0 {
		return 0
	}
	return evs[0].Count
}
