package events

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/store"
)

func TestRecordAndPrune(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := New(st, func() time.Time { now = now.Add(time.Second); return now }, 5, nil)
	ctx := context.Background()
	for i := range 8 {
		r.Record(ctx, objects.Event{Reason: "Started", Object: "Workload/web", Instance: "web-" + string(rune('0'+i)), Message: "m"})
	}
	r.Prune(ctx)
	recs, _, err := st.List(ctx, objects.KindEvent)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 {
		t.Fatalf("%d events kept, want 5", len(recs))
	}
	first, err := objects.EventFrom(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	if first.Instance != "web-3" || first.Type != Normal || first.Time.IsZero() {
		t.Errorf("oldest kept event %+v, want web-3 (the three oldest pruned), type Normal, stamped", first)
	}
}

func TestNilRecorder(t *testing.T) {
	var r *Recorder
	r.Record(context.Background(), objects.Event{Reason: "x"}) // must not panic
}

// Repeats of an event fold into one stored event with a count, within the window; a
// different message, or a repeat after the window, starts a new one.
func TestSeries(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	r := New(st, func() time.Time { return now }, 100, nil)
	ctx := context.Background()
	failed := objects.Event{Type: Warning, Reason: "FailedStart", Object: "Workload/web", Instance: "web-0", Message: "no image"}
	for range 37 {
		r.Record(ctx, failed)
		now = now.Add(20 * time.Second)
	}
	other := failed
	other.Message = "another reason"
	r.Record(ctx, other)
	now = now.Add(DefaultSeriesWindow)
	r.Record(ctx, failed) // the series ended: a new event

	recs, _, err := st.List(ctx, objects.KindEvent)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d events stored, want 3 (a series of 37, another message, a new series)", len(recs))
	}
	first, err := objects.EventFrom(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	last := start.Add(36 * 20 * time.Second)
	if first.Count != 37 || first.FirstTime == nil || !first.FirstTime.Equal(start) || !first.Time.Equal(last) {
		t.Errorf("series = count %d first %v last %v, want 37 from %v to %v", first.Count, first.FirstTime, first.Time, start, last)
	}
	for _, rec := range recs[1:] {
		e, err := objects.EventFrom(rec)
		if err != nil {
			t.Fatal(err)
		}
		if e.Count != 0 || e.FirstTime != nil {
			t.Errorf("event %q = count %d first %v, want a single event", e.Message, e.Count, e.FirstTime)
		}
	}
}
