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
