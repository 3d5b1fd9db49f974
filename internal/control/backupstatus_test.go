package control

import (
	"context"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
)

// TestStatusWritesKeepBackup: the controller's status writes keep status.backup, which
// the daemon's backup schedule records.
func TestStatusWritesKeepBackup(t *testing.T) {
	e := newEnv(t)
	e.apply(workload("web", "1", sleepForever, "Always"), v1alpha1.TierContainer)
	ctx := context.Background()
	rec, err := e.st.Get(ctx, v1alpha1.KindWorkload, "web")
	if err != nil {
		t.Fatal(err)
	}
	w, err := objects.Workload(rec)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w.Status.Backup = &v1alpha1.BackupStatus{LastAttempt: &at, LastError: "repository default: unreachable"}
	next, err := objects.Record(v1alpha1.KindWorkload, w.Metadata, w.Spec, w.Status)
	if err != nil {
		t.Fatal(err)
	}
	next.ResourceVersion = rec.ResourceVersion
	if _, err := e.st.UpdateStatus(ctx, next); err != nil {
		t.Fatal(err)
	}
	if st := e.status("web"); st.Backup == nil {
		t.Fatalf("status.backup was not stored: %+v", st)
	}
	e.reconcile("web")
	st := e.status("web")
	if len(st.Instances) != 1 {
		t.Fatalf("status %s: want the instance written", states(st))
	}
	if st.Backup == nil || st.Backup.LastError != "repository default: unreachable" || !st.Backup.LastAttempt.Equal(at) {
		t.Errorf("status.backup after the controller's write: %+v, want it kept", st.Backup)
	}
}
