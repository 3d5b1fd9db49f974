package control

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/netseg/netstate"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/fake"
)

// hookDriver calls after once each Start returns, as a concurrent API request would act
// while the reconcile starts slots one after another.
type hookDriver struct {
	runtime.Driver
	after func(ctx context.Context, spec runtime.InstanceSpec, err error) error
}

func (d *hookDriver) Start(ctx context.Context, spec runtime.InstanceSpec) (runtime.Status, error) {
	st, err := d.Driver.Start(ctx, spec)
	return st, d.after(ctx, spec, err)
}

// recordingNetwork attaches nothing but keeps track, and, like the real network manager,
// refuses to act on an ended context.
type recordingNetwork struct {
	mu       sync.Mutex
	attached map[string]bool
}

func (n *recordingNetwork) Attach(ctx context.Context, _, id string, _ bool) (netstate.Attachment, error) {
	if err := ctx.Err(); err != nil {
		return netstate.Attachment{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.attached[id] = true
	return netstate.Attachment{IP: netip.MustParseAddr("10.213.0.9")}, nil
}

func (n *recordingNetwork) Detach(ctx context.Context, _, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.attached, id)
	return nil
}

func (n *recordingNetwork) left() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for id := range n.attached {
		out = append(out, id)
	}
	return out
}

// hookedEnv is an env whose driver runs after after every Start, with a recording network.
func hookedEnv(t *testing.T, after func(ctx context.Context, spec runtime.InstanceSpec, err error) error) (*env, *recordingNetwork) {
	e := newEnv(t)
	d, err := fake.New(fake.Options{Host: e.host, Tiers: []v1alpha1.Tier{v1alpha1.TierContainer}, Images: []string{image}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := runtime.NewRegistry(&hookDriver{Driver: d, after: after})
	if err != nil {
		t.Fatal(err)
	}
	netw := &recordingNetwork{attached: map[string]bool{}}
	e.c = New(Options{Store: e.st, Drivers: reg, Network: netw, Events: e.rec, Clock: e.clock.Now, DataDir: t.TempDir()})
	return e, netw
}

// TestReconcileStopsStartingForADeletedWorkload deletes a workload of 10,000 replicas
// while its third instance starts: the reconcile must start no further slot, and the next
// one must remove what did start.
func TestReconcileStopsStartingForADeletedWorkload(t *testing.T) {
	var e *env
	starts := 0
	e, netw := hookedEnv(t, func(ctx context.Context, spec runtime.InstanceSpec, err error) error {
		starts++
		if spec.Slot == 2 {
			// `strata delete`: the API server marks the workload; the controller removes it.
			rec, gerr := e.st.Get(ctx, v1alpha1.KindWorkload, "many")
			if gerr != nil {
				return gerr
			}
			rec.Annotations = map[string]string{v1alpha1.AnnotationDeletionRequested: "now"}
			if _, uerr := e.st.Update(ctx, rec); uerr != nil {
				return uerr
			}
		}
		return err
	})
	e.apply(workload("many", "10000", sleepForever, "Always"), v1alpha1.TierContainer)
	after, err := e.c.Reconcile(context.Background(), "many")
	if err != nil {
		t.Fatal(err)
	}
	if starts != 3 {
		t.Fatalf("%d instances started, want 3: the reconcile went on starting slots of a deleted workload", starts)
	}
	if after <= 0 || after > time.Second {
		t.Errorf("requeue after %s, want at once", after)
	}
	e.reconcile("many")
	if n := len(e.instances()); n != 0 {
		t.Errorf("%d instances left after the delete", n)
	}
	if left := netw.left(); len(left) != 0 {
		t.Errorf("still attached: %v", left)
	}
	if _, err := e.st.Get(context.Background(), v1alpha1.KindWorkload, "many"); err == nil {
		t.Error("the workload is still stored")
	}
}

// TestReconcileStopsStartingWhenScaledDown lowers replicas while slots start.
func TestReconcileStopsStartingWhenScaledDown(t *testing.T) {
	var e *env
	e, _ = hookedEnv(t, func(_ context.Context, spec runtime.InstanceSpec, err error) error {
		if spec.Slot == 1 {
			e.apply(workload("many", "2", sleepForever, "Always"), v1alpha1.TierContainer)
		}
		return err
	})
	e.apply(workload("many", "50", sleepForever, "Always"), v1alpha1.TierContainer)
	if _, err := e.c.Reconcile(context.Background(), "many"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.instances()); n != 2 {
		t.Fatalf("%d instances after scaling 50 down to 2 during the start, want 2", n)
	}
}

// TestFailedStartUndoesTheAttachOnAFreshContext ends the reconcile's context during a
// start (its deadline passes): the attach must still be undone, or the instance's network
// namespace, veth and address stay behind with no instance to remove them with.
func TestFailedStartUndoesTheAttachOnAFreshContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, netw := hookedEnv(t, func(_ context.Context, _ runtime.InstanceSpec, err error) error {
		cancel()
		return err
	})
	e.host.FailStart("one-0", context.DeadlineExceeded)
	e.apply(workload("one", "1", sleepForever, "Always"), v1alpha1.TierContainer)
	_, err := e.c.Reconcile(ctx, "one")
	if err == nil || !strings.Contains(err.Error(), "start one-0") {
		t.Fatalf("reconcile: %v, want the start's error", err)
	}
	if left := netw.left(); len(left) != 0 {
		t.Errorf("still attached after the failed start: %v", left)
	}
}
