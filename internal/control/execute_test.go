package control

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/fake"
)

// closedDriver returns a driver whose every call fails.
func closedDriver(t *testing.T) runtime.Driver {
	t.Helper()
	d, err := fake.New(fake.Options{Name: "closed", Tiers: v1alpha1.Tiers, Images: []string{image}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestExecuteSkipsTheRestOfAFailedSlot: a failed action skips the later actions of its own
// slot only, reports what the action says, and the status is still written.
func TestExecuteSkipsTheRestOfAFailedSlot(t *testing.T) {
	e := newEnv(t)
	e.apply(workload("web", "2", sleepForever, "Always"), v1alpha1.TierContainer)
	broken := observed{driver: closedDriver(t), status: runtime.Status{ID: "web-0", State: runtime.StateRunning}}
	in0 := v1alpha1.Instance{ID: "web-0", Tier: v1alpha1.TierContainer, Restarts: 2}
	in1 := v1alpha1.Instance{ID: "web-1", Tier: v1alpha1.TierContainer, State: "running"}
	p := steps{Requeue: 3 * time.Second, Actions: []action{
		{Kind: actRemove, ID: "web-0", ob: broken, Instance: in0, OnFail: failReportError},
		{Kind: actEvent, ID: "web-0", Type: "Normal", Reason: "Replaced"},
		{Kind: actStillWanted, ID: "web-0"},
		{Kind: actStart, ID: "web-0", Instance: in0},
		{Kind: actReport, ID: "web-1", Instance: in1},
		{Kind: actEvent, ID: "web-1", Type: "Normal", Reason: "Noted"},
		{Kind: actWriteStatus, Replicas: 2},
	}}
	after, err := e.c.execute(context.Background(), observation{Name: "web"}, "", p)
	if !errors.Is(err, fake.ErrClosed) {
		t.Fatalf("error %v, want the failed removal's", err)
	}
	if after != 3*time.Second {
		t.Errorf("requeue %s, want the plan's 3s", after)
	}
	if got := e.rec.reasons(); got != "web-1:Noted" {
		t.Errorf("events %q, want only web-1's: web-0's event and start follow its failed removal", got)
	}
	st := e.status("web")
	if got := states(st); got != "Degraded web-0=failed/2 web-1=running/0" {
		t.Errorf("status %s", got)
	}
	if len(st.Instances) > 0 && !strings.Contains(st.Instances[0].Message, "stop web-0") {
		t.Errorf("web-0's message %q does not say which step failed", st.Instances[0].Message)
	}
	if n := len(e.instances()); n != 0 {
		t.Errorf("%d instances started after a failed removal", n)
	}
}

// TestExecuteAbortsAndDeletesOnlyWhenClean: a removal that must end the reconcile ends it
// before the status write, and a workload's record is not deleted while removing its
// instances failed.
func TestExecuteAbortsAndDeletesOnlyWhenClean(t *testing.T) {
	e := newEnv(t)
	e.apply(workload("web", "1", sleepForever, "Always"), v1alpha1.TierContainer)
	before := e.status("web")
	broken := observed{driver: closedDriver(t), status: runtime.Status{ID: "web-0", State: runtime.StateExited}}
	after, err := e.c.execute(context.Background(), observation{Name: "web"}, "", steps{Requeue: time.Minute, Actions: []action{
		{Kind: actRemove, ID: "web-0", ob: broken, OnFail: failAbort},
		{Kind: actRemove, ID: "web-1", ob: broken},
		{Kind: actWriteStatus, Phase: v1alpha1.PhaseFailed, Reason: "NoDriver", Message: "none"},
	}})
	if err == nil || after != 0 {
		t.Fatalf("requeue %s, error %v: want 0 and the removal's error", after, err)
	}
	if got := e.status("web"); got.Phase != before.Phase || len(got.Conditions) != len(before.Conditions) {
		t.Errorf("status written after an aborting failure: %+v", got)
	}

	_, err = e.c.execute(context.Background(), observation{Name: "web"}, "", steps{Actions: []action{
		{Kind: actRemove, ID: "web-0", ob: broken},
		{Kind: actRemoveLogs, ID: "web-0"},
		{Kind: actDeleteWorkload},
	}})
	if err == nil {
		t.Fatal("no error from a failed removal")
	}
	if _, gerr := e.st.Get(context.Background(), v1alpha1.KindWorkload, "web"); gerr != nil {
		t.Fatalf("the workload was deleted although removing an instance failed: %v", gerr)
	}
}
