package objects

import (
	"context"
	"path/filepath"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/store"
)

// TestUpdateStatus: a change is written and only the status changes; no change writes
// nothing; a writer that got there first is read again and kept; a missing object is no
// error.
func TestUpdateStatus(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec, err := Record(v1alpha1.KindWorkload, v1alpha1.ObjectMeta{Name: "web"}, v1alpha1.WorkloadSpec{Image: "app:1"}, v1alpha1.WorkloadStatus{Tier: v1alpha1.TierContainer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = st.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	get := func() (*v1alpha1.Workload, uint64) {
		t.Helper()
		r, err := st.Get(ctx, v1alpha1.KindWorkload, "web")
		if err != nil {
			t.Fatal(err)
		}
		w, err := Workload(r)
		if err != nil {
			t.Fatal(err)
		}
		return w, r.ResourceVersion
	}

	if err := UpdateWorkloadStatus(ctx, st, "web", func(s *v1alpha1.WorkloadStatus) { s.Phase = v1alpha1.PhaseRunning }); err != nil {
		t.Fatal(err)
	}
	w, rv := get()
	if w.Status.Phase != v1alpha1.PhaseRunning || w.Status.Tier != v1alpha1.TierContainer || w.Spec.Image != "app:1" {
		t.Fatalf("after the update: spec %+v status %+v", w.Spec, w.Status)
	}
	if err := UpdateWorkloadStatus(ctx, st, "web", func(s *v1alpha1.WorkloadStatus) { s.Phase = v1alpha1.PhaseRunning }); err != nil {
		t.Fatal(err)
	}
	if _, rv2 := get(); rv2 != rv {
		t.Errorf("an update that changed nothing wrote resourceVersion %d -> %d", rv, rv2)
	}

	// Another writer changes the status between our read and our write, once.
	calls := 0
	err = UpdateWorkloadStatus(ctx, st, "web", func(s *v1alpha1.WorkloadStatus) {
		calls++
		if calls == 1 {
			other, _ := get()
			other.Status.Reasons = []v1alpha1.Reason{{Rule: "again", Message: "assessed again"}}
			r, err := Record(v1alpha1.KindWorkload, other.Metadata, other.Spec, other.Status)
			if err != nil {
				t.Fatal(err)
			}
			r.ResourceVersion = rv
			if _, err := st.UpdateStatus(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		s.Phase = v1alpha1.PhaseDegraded
	})
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := get(); calls != 2 || w.Status.Phase != v1alpha1.PhaseDegraded || len(w.Status.Reasons) != 1 {
		t.Errorf("after a conflict: %d calls, status %+v; want a second try that keeps the other writer's reasons", calls, w.Status)
	}

	if err := UpdateWorkloadStatus(ctx, st, "gone", func(*v1alpha1.WorkloadStatus) { t.Error("change called for a missing workload") }); err != nil {
		t.Errorf("a missing workload: %v, want nil", err)
	}

	seg, err := Record(v1alpha1.KindSegment, v1alpha1.ObjectMeta{Name: "db"}, v1alpha1.SegmentSpec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, seg); err != nil {
		t.Fatal(err)
	}
	if err := UpdateSegmentStatus(ctx, st, "db", func(s *v1alpha1.SegmentStatus) { s.Workloads = 3 }); err != nil {
		t.Fatal(err)
	}
	r, err := st.Get(ctx, v1alpha1.KindSegment, "db")
	if err != nil {
		t.Fatal(err)
	}
	if sg, err := Segment(r); err != nil || sg.Status == nil || sg.Status.Workloads != 3 {
		t.Errorf("segment status %+v, %v; want 3 workloads", sg.Status, err)
	}
}
