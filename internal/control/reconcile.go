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
//
// It observes (the stored workload, the drivers' instances, the due health checks), plans
// (plan, a pure function of the observation) and carries the plan's actions out in order.
func (c *Controller) Reconcile(ctx context.Context, name string) (time.Duration, error) {
	o, uid, err := c.observe(ctx, name)
	if err != nil {
		return 0, err
	}
	return c.execute(ctx, o, uid, plan(o))
}

// observe gathers what the plan of workload name is made from, and the UID of the workload
// read ("" when there is none). It runs the health checks that are due.
func (c *Controller) observe(ctx context.Context, name string) (observation, string, error) {
	o := observation{
		Name: name, Starts: c.retry.starts,
		RestartBackoff: c.o.RestartBackoff, MaxRestartBackoff: c.o.MaxRestartBackoff,
	}
	rec, err := c.o.Store.Get(ctx, v1alpha1.KindWorkload, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return o, "", err
	}
	if err == nil {
		if o.Workload, err = objects.Workload(rec); err != nil {
			return o, "", err
		}
	}
	if o.Observed, err = c.instancesOf(ctx, name); err != nil {
		return o, "", err
	}
	if o.Workload == nil || deleting(o.Workload) {
		return o, rec.UID, nil
	}
	o.Where = whereRuns(o.Workload)
	o.Driver, o.NoDriver = c.o.Drivers.For(tierOf(o.Workload), o.Where.NodeVM)
	if o.NoDriver != nil {
		o.Driver = nil
	}
	o.Now = c.o.Clock()
	o.Health = map[string]healthCheck{}
	for _, id := range probeable(o) {
		h := healthCheck{}
		h.Restart, h.Again, h.Reason = c.checkHealth(ctx, o.Workload, o.Driver, id, lastIP(o.Workload, id))
		o.Health[id] = h
	}
	for id := range o.Observed {
		if ps := c.health[id]; ps != nil {
			h := o.Health[id]
			h.Failures, h.Message = ps.failures, ps.message
			o.Health[id] = h
		}
	}
	return o, rec.UID, nil
}

// lastIP is the address the last status of w gives instance id.
func lastIP(w *v1alpha1.Workload, id string) string {
	if w.Status == nil {
		return ""
	}
	ip := ""
	for _, in := range w.Status.Instances {
		if in.ID == id {
			ip = in.IP // the last entry wins, as in plan's view of the status
		}
	}
	return ip
}

// execute carries out the actions of p in order (see actionKind and onFail) and returns
// how soon to look again and what failed. uid is the workload's the plan was made for.
func (c *Controller) execute(ctx context.Context, o observation, uid string, p steps) (time.Duration, error) {
	var (
		insts  []v1alpha1.Instance
		errs   []error
		failed string // the ID whose remaining actions are skipped
	)
	for _, a := range p.Actions {
		if failed != "" && a.ID == failed {
			continue
		}
		failed = ""
		var err error
		switch a.Kind {
		case actRemove:
			err = c.remove(ctx, a.ob)
		case actRestartRemove:
			err = c.restartRemove(ctx, a.ob)
		case actEvent:
			c.event(ctx, o.Name, a.ID, a.Type, a.Reason, a.Message)
		case actReport:
			insts = append(insts, a.Instance)
		case actKeep:
			if _, err := rotateLog(filepath.Join(c.o.DataDir, "logs", a.ID+".log"), c.o.MaxLogBytes, c.o.LogFiles); err != nil {
				c.log.Warn("log not rotated", "instance", a.ID, "err", err)
			}
			insts = append(insts, a.Instance)
		case actStillWanted:
			if !c.slotWanted(ctx, uid, o.Name, a.Slot) {
				// The workload was deleted, held or scaled down while the slots before this
				// one started (or the reconcile ran out of time): start nothing more, and
				// look again at once, from the workload as it is now.
				c.log.Info("reconcile stopped starting instances", "workload", o.Name, "slot", a.Slot)
				return againNow, errors.Join(errs...)
			}
		case actStart:
			insts = append(insts, c.startSlot(ctx, o, a, &errs))
		case actRemoveLogs:
			err = c.removeLogs(a.ID)
		case actDeleteWorkload:
			if len(errs) > 0 {
				return 0, errors.Join(errs...)
			}
			if err := c.o.Store.Delete(ctx, v1alpha1.KindWorkload, o.Name, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
				return 0, err
			}
		case actWriteStatus:
			phase, reason, msg := a.Phase, a.Reason, a.Message
			if phase == "" {
				phase, reason, msg = summarize(insts, a.Replicas)
			}
			err = c.writeStatus(ctx, o.Name, insts, phase, reason, msg)
		}
		if err == nil {
			continue
		}
		errs = append(errs, err)
		failed = a.ID
		switch a.OnFail {
		case failAbort:
			return 0, errors.Join(errs...)
		case failReport:
			insts = append(insts, a.Instance)
		case failReportError:
			in := a.Instance
			in.State, in.Message = string(runtime.StateFailed), err.Error()
			insts = append(insts, in)
		}
	}
	return p.Requeue, errors.Join(errs...)
}

// startSlot carries out a start action and returns the instance to report.
func (c *Controller) startSlot(ctx context.Context, o observation, a action, errs *[]error) v1alpha1.Instance {
	w, in := o.Workload, a.Instance
	tier, hash := tierOf(w), specHash(w, tierOf(w))
	st, ip, err := c.start(ctx, w, tier, o.Driver, o.Where, a.Slot, hash)
	if err != nil {
		c.retry.startFailed(a.ID, hash, err.Error(), o.Now, c.o.RestartBackoff, c.o.MaxRestartBackoff)
		*errs = append(*errs, fmt.Errorf("start %s: %w", a.ID, err))
		in.State, in.Message = string(runtime.StateFailed), err.Error()
		c.event(ctx, o.Name, a.ID, "Warning", "FailedStart", err.Error())
		return in
	}
	c.retry.started(a.ID)
	if ip != "" {
		in.IP = ip
	}
	msg := fmt.Sprintf("%s instance started on %s (pid %d)", tier, o.Driver.Name(), st.PID)
	if o.Where.NodeVM {
		msg += ", " + o.Where.String()
		if st.Message != "" {
			msg += ": " + st.Message
		}
		if caps := o.Driver.Capabilities(); !caps.NetNS && !caps.VMNet {
			msg += "; loopback only: node VMs do not attach replicas to segments yet"
		} else if ip != "" {
			msg += "; on segment " + segmentOf(w) + " at " + ip
		}
	}
	c.event(ctx, o.Name, a.ID, "Normal", "Started", msg)
	return observedInstance(in, st)
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

func (c *Controller) event(ctx context.Context, workload, instance, typ, reason, msg string) {
	e := objects.Event{Type: typ, Reason: reason, Object: "Workload/" + workload, Instance: instance, Message: msg}
	if c.o.Events != nil {
		c.o.Events.Record(ctx, e)
		return
	}
	c.log.Info("event", "type", typ, "reason", reason, "workload", workload, "instance", instance, "message", msg)
}
