package control

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/store"
)

// Reconcile makes workload name's instances match its spec and writes what it observed to
// the workload's status. It returns how soon it wants to look again (0: on the next change
// or resync) and an error when a step failed (the caller retries with backoff).
func (c *Controller) Reconcile(ctx context.Context, name string) (time.Duration, error) {
	rec, err := c.o.Store.Get(ctx, v1alpha1.KindWorkload, name)
	if errors.Is(err, store.ErrNotFound) {
		return 0, c.deleteAll(ctx, name)
	}
	if err != nil {
		return 0, err
	}
	w, err := objects.Workload(rec)
	if err != nil {
		return 0, err
	}
	if _, deleting := w.Metadata.Annotations[v1alpha1.AnnotationDeletionRequested]; deleting {
		if err := c.deleteAll(ctx, name); err != nil {
			return 0, err
		}
		err := c.o.Store.Delete(ctx, v1alpha1.KindWorkload, name, 0)
		if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
		return 0, err
	}
	prev := map[string]v1alpha1.Instance{}
	tier := v1alpha1.TierContainer
	if w.Status != nil {
		for _, in := range w.Status.Instances {
			prev[in.ID] = in
		}
		if w.Status.Tier.Valid() {
			tier = w.Status.Tier
		}
	}
	obs, err := c.instancesOf(ctx, name)
	if err != nil {
		return 0, err
	}
	driver, derr := c.o.Drivers.ForTier(tier)
	if derr != nil {
		// Nothing can run: remove what runs elsewhere and say why.
		for _, id := range sortedIDs(obs) {
			if err := c.remove(ctx, obs[id]); err != nil {
				return 0, err
			}
		}
		msg := fmt.Sprintf("no driver on this host serves the %s tier (%v)", tier, derr)
		return time.Minute, c.writeStatus(ctx, name, nil, v1alpha1.PhaseFailed, "NoDriver", msg)
	}

	hash := specHash(w, tier)
	// With spec.scaling, the scaler's count (status.scaling), else spec.replicas.
	replicas := int(w.DesiredReplicas())
	if _, held := w.Metadata.Annotations[v1alpha1.AnnotationHold]; held {
		replicas = 0 // held (a restore is under way): every instance stops until the hold ends
	}
	now := c.o.Clock()
	var (
		insts   []v1alpha1.Instance
		requeue time.Duration
		errs    []error
	)
	wantAgain := func(d time.Duration) {
		if d > 0 && (requeue == 0 || d < requeue) {
			requeue = d
		}
	}
	for slot := 0; slot < replicas; slot++ {
		id := InstanceID(name, slot)
		before := prev[id]
		in := v1alpha1.Instance{ID: id, Tier: tier, Restarts: before.Restarts, IP: before.IP}
		ob, exists := obs[id]
		delete(obs, id)
		if exists && (ob.driver != driver || ob.status.Labels[LabelSpecHash] != hash) {
			if err := c.remove(ctx, ob); err != nil {
				errs = append(errs, err)
				in.State, in.Message = string(runtime.StateFailed), err.Error()
				insts = append(insts, in)
				continue
			}
			c.event(ctx, name, id, "Normal", "Replaced", "the spec changed: the instance is started again from the new spec")
			exists = false
			in.Restarts = 0
		}
		if exists && (ob.status.State == runtime.StateExited || ob.status.State == runtime.StateFailed) {
			st := ob.status
			if before.State != string(runtime.StateExited) && before.State != string(runtime.StateFailed) {
				c.recordExit(ctx, name, st)
			}
			if !restartable(w.Spec.RestartPolicy, st) {
				insts = append(insts, observedInstance(in, st))
				continue
			}
			delay := backoff(c.o.RestartBackoff, c.o.MaxRestartBackoff, int(in.Restarts))
			if wait := st.FinishedAt.Add(delay).Sub(now); wait > 0 {
				out := observedInstance(in, st)
				out.Message = fmt.Sprintf("%s; restarting in %s", out.Message, wait.Round(time.Second))
				insts = append(insts, out)
				wantAgain(wait)
				continue
			}
			if err := c.restartRemove(ctx, ob); err != nil {
				errs = append(errs, err)
				insts = append(insts, observedInstance(in, st))
				continue
			}
			in.Restarts++
			exists = false
			c.event(ctx, name, id, "Normal", "Restarted", fmt.Sprintf("restart %d after exit code %d", in.Restarts, st.ExitCode))
		}
		if exists && ob.status.State == runtime.StateRunning && w.Spec.Health != nil {
			restart, again, msg := c.checkHealth(ctx, w, driver, id, in.IP)
			wantAgain(again)
			if restart {
				c.event(ctx, name, id, "Warning", "Unhealthy", msg)
				if err := c.restartRemove(ctx, ob); err != nil {
					errs = append(errs, err)
					insts = append(insts, observedInstance(in, ob.status))
					continue
				}
				in.Restarts++
				exists = false
				c.event(ctx, name, id, "Normal", "Restarted", fmt.Sprintf("restart %d: the health check failed", in.Restarts))
			}
		}
		if !exists && !c.slotWanted(ctx, rec.UID, name, slot) {
			// The workload was deleted, held or scaled down while the slots before this
			// one started (or the reconcile ran out of time): start nothing more, and
			// look again at once, from the workload as it is now.
			c.log.Info("reconcile stopped starting instances", "workload", name, "slot", slot)
			return againNow, errors.Join(errs...)
		}
		if !exists {
			if wait, why := c.retry.startWait(id, hash, now); wait > 0 {
				// The last start of this spec failed: wait out its backoff.
				in.State, in.Message = string(runtime.StateFailed), fmt.Sprintf("%s; starting again in %s", why, wait.Round(time.Second))
				insts = append(insts, in)
				wantAgain(wait)
				continue
			}
			st, ip, err := c.start(ctx, w, tier, driver, slot, hash)
			if err != nil {
				c.retry.startFailed(id, hash, err.Error(), now, c.o.RestartBackoff, c.o.MaxRestartBackoff)
				errs = append(errs, fmt.Errorf("start %s: %w", id, err))
				in.State, in.Message = string(runtime.StateFailed), err.Error()
				insts = append(insts, in)
				c.event(ctx, name, id, "Warning", "FailedStart", err.Error())
				continue
			}
			c.retry.started(id)
			if ip != "" {
				in.IP = ip
			}
			c.event(ctx, name, id, "Normal", "Started", fmt.Sprintf("%s instance started on %s (pid %d)", tier, driver.Name(), st.PID))
			insts = append(insts, observedInstance(in, st))
			continue
		}
		if _, err := rotateLog(filepath.Join(c.o.DataDir, "logs", id+".log"), c.o.MaxLogBytes, c.o.LogFiles); err != nil {
			c.log.Warn("log not rotated", "instance", id, "err", err)
		}
		out := observedInstance(in, ob.status)
		if ps := c.health[id]; ps != nil && ps.failures > 0 && w.Spec.Health != nil {
			out.Message = fmt.Sprintf("health check failing (%d of %d): %s", ps.failures, w.Spec.Health.FailureThreshold, ps.message)
		}
		insts = append(insts, out)
	}
	// Slots above the replica count are scaled down, from the top.
	for _, id := range sortedIDs(obs) {
		if err := c.remove(ctx, obs[id]); err != nil {
			errs = append(errs, err)
			continue
		}
		c.event(ctx, name, id, "Normal", "Removed", "the slot is no longer wanted (replicas "+strconv.Itoa(replicas)+")")
	}
	phase, reason, msg := summarize(insts, replicas)
	if err := c.writeStatus(ctx, name, insts, phase, reason, msg); err != nil {
		errs = append(errs, err)
	}
	return requeue, errors.Join(errs...)
}

// againNow is the requeue of a reconcile that stopped early because the workload changed
// under it: the next one runs at once.
const againNow = time.Millisecond

// slotWanted reports whether the instance of slot should still be started: ctx has not
// ended, and the workload read at the reconcile's start (uid) still exists, is not being
// deleted or held, and still wants that many replicas. Starting one instance takes long
// enough (hundreds of milliseconds) that a workload deleted after the first of ten
// thousand slots must not see the other 9,999 start.
func (c *Controller) slotWanted(ctx context.Context, uid, name string, slot int) bool {
	if ctx.Err() != nil {
		return false
	}
	rec, err := c.o.Store.Get(ctx, v1alpha1.KindWorkload, name)
	if err != nil || rec.UID != uid {
		return false
	}
	w, err := objects.Workload(rec)
	if err != nil {
		return false
	}
	if _, deleting := w.Metadata.Annotations[v1alpha1.AnnotationDeletionRequested]; deleting {
		return false
	}
	if _, held := w.Metadata.Annotations[v1alpha1.AnnotationHold]; held {
		return false
	}
	return slot < int(w.DesiredReplicas())
}

// restartable applies the restart policy to an instance that has ended.
func restartable(p v1alpha1.RestartPolicy, st runtime.Status) bool {
	switch p {
	case v1alpha1.RestartNever:
		return false
	case v1alpha1.RestartOnFailure:
		return st.State == runtime.StateFailed || st.ExitCode != 0 || st.OOMKilled
	}
	return true
}

func observedInstance(in v1alpha1.Instance, st runtime.Status) v1alpha1.Instance {
	in.State = string(st.State)
	in.PID = st.PID
	in.Message = st.Message
	if !st.StartedAt.IsZero() {
		t := st.StartedAt.UTC()
		in.StartedAt = &t
	}
	if st.State == runtime.StateExited && in.Message == "" {
		in.Message = "exited with code " + strconv.Itoa(st.ExitCode)
		if st.OOMKilled {
			in.Message += " (OOM-killed: the memory limit was reached)"
		}
	}
	return in
}

func (c *Controller) recordExit(ctx context.Context, name string, st runtime.Status) {
	if st.OOMKilled {
		c.event(ctx, name, st.ID, "Warning", "OOMKilled", fmt.Sprintf("the kernel killed the instance at its memory limit (exit code %d)", st.ExitCode))
		return
	}
	typ := "Normal"
	if st.ExitCode != 0 || st.State == runtime.StateFailed {
		typ = "Warning"
	}
	c.event(ctx, name, st.ID, typ, "Exited", fmt.Sprintf("exited with code %d %s", st.ExitCode, st.Message))
}

// summarize gives the workload's phase and its Ready condition.
func summarize(insts []v1alpha1.Instance, replicas int) (v1alpha1.Phase, string, string) {
	running, failed := 0, 0
	for _, in := range insts {
		switch in.State {
		case string(runtime.StateRunning):
			running++
		case string(runtime.StateFailed):
			failed++
		}
	}
	msg := fmt.Sprintf("%d of %d instances running", running, replicas)
	switch {
	case replicas == 0:
		return v1alpha1.PhaseStopped, "ScaledToZero", "replicas is 0"
	case running == replicas:
		return v1alpha1.PhaseRunning, "AllRunning", msg
	case running > 0:
		return v1alpha1.PhaseDegraded, "SomeNotRunning", msg
	case failed > 0:
		return v1alpha1.PhaseFailed, "NoneRunning", msg
	}
	return v1alpha1.PhasePending, "Starting", msg
}

// writeStatus stores the observed instances, phase and Ready condition, keeping the
// assessment and the scaler's decision (objects.UpdateWorkloadStatus retries when another
// writer got there first, and writes nothing when nothing changed).
func (c *Controller) writeStatus(ctx context.Context, name string, insts []v1alpha1.Instance, phase v1alpha1.Phase, reason, msg string) error {
	return objects.UpdateWorkloadStatus(ctx, c.o.Store, name, func(st *v1alpha1.WorkloadStatus) {
		st.Instances, st.Phase = insts, phase
		status := v1alpha1.ConditionTrue
		if phase != v1alpha1.PhaseRunning {
			status = v1alpha1.ConditionFalse
		}
		st.Conditions = setCondition(st.Conditions, v1alpha1.Condition{Type: "Ready", Status: status, Reason: reason, Message: msg}, c.o.Clock())
	})
}

// setCondition replaces the condition of the same type, keeping its transition time when
// the status did not change.
func setCondition(conds []v1alpha1.Condition, c v1alpha1.Condition, now time.Time) []v1alpha1.Condition {
	for i := range conds {
		if conds[i].Type == c.Type {
			if conds[i].Status == c.Status {
				c.LastTransitionTime = conds[i].LastTransitionTime
			} else {
				c.LastTransitionTime = now.UTC().Truncate(time.Second)
			}
			conds[i] = c
			return conds
		}
	}
	c.LastTransitionTime = now.UTC().Truncate(time.Second)
	return append(conds, c)
}

// deleteAll removes every instance of a deleted workload.
func (c *Controller) deleteAll(ctx context.Context, name string) error {
	obs, err := c.instancesOf(ctx, name)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range sortedIDs(obs) {
		if err := c.remove(ctx, obs[id]); err != nil {
			errs = append(errs, err)
			continue
		}
		c.event(ctx, name, id, "Normal", "Removed", "the workload was deleted")
		// The instance's logs go with the workload: a new workload of the same name starts
		// with empty logs. (Volumes stay: they are data.)
		if err := c.removeLogs(id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Controller) event(ctx context.Context, workload, instance, typ, reason, msg string) {
	e := objects.Event{Type: typ, Reason: reason, Object: "Workload/" + workload, Instance: instance, Message: msg}
	if c.o.Events != nil {
		c.o.Events.Record(ctx, e)
		return
	}
	c.log.Info("event", "type", typ, "reason", reason, "workload", workload, "instance", instance, "message", msg)
}
