package control

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// A reconcile observes, plans and executes. The plan is a pure function of what was
// observed: it reads no store, calls no driver, touches no file and reads no clock. The
// executor (Reconcile, in reconcile.go) gathers the observation, carries the actions out in
// order and writes the status.

// observation is everything a plan is made from.
type observation struct {
	// Name is the workload's; Workload is the workload as stored, nil when it is not.
	Name     string
	Workload *v1alpha1.Workload
	// Driver serves the workload's tier (see tierOf); when no driver does, Driver is nil and
	// NoDriver says why.
	Driver   runtime.Driver
	NoDriver error
	// Where is where the replicas run (whereRuns): it chose Driver.
	Where where
	// Observed holds the workload's instances as the drivers report them, by ID.
	Observed map[string]observed
	// Health holds what the health checks of the workload's instances found, by ID (see probeable).
	Health map[string]healthCheck
	// Starts holds the failed starts of the workload's slots (the controller's per-slot
	// start backoff), by instance ID.
	Starts map[string]retry
	// Now is when the reconcile began.
	Now time.Time
	// RestartBackoff and MaxRestartBackoff bound the wait before an exited instance is
	// restarted: RestartBackoff * 2^restarts, at most MaxRestartBackoff.
	RestartBackoff, MaxRestartBackoff time.Duration
}

// healthCheck is what the health checks of one running instance found.
type healthCheck struct {
	// Restart: failureThreshold probes in a row failed, Reason says how.
	Restart bool
	Reason  string
	// Again is how soon the next probe is due.
	Again time.Duration
	// Failures is how many probes in a row failed so far, Message why the last one did.
	Failures int32
	Message  string
}

// actionKind says what an action does.
type actionKind int

const (
	// actRemove stops and removes an instance and detaches it from its segment.
	actRemove actionKind = iota
	// actRestartRemove stops and removes an instance that starts again in the same slot: it
	// stays attached, so the slot keeps its address.
	actRestartRemove
	// actEvent records an event.
	actEvent
	// actReport puts an instance in the status as the plan made it.
	actReport
	// actKeep leaves a running instance alone: its log is rotated and it is reported.
	actKeep
	// actStillWanted re-reads the workload before a start: when it was deleted, held or
	// scaled below the slot meanwhile (or the reconcile ran out of time), the reconcile
	// stops at once, writes no status and asks to run again at once.
	actStillWanted
	// actStart starts the instance of a slot and reports it; a failed start is reported
	// failed, backs the slot off and records a FailedStart event, a successful one forgets
	// the slot's backoff and records a Started event.
	actStart
	// actRemoveLogs deletes an instance's logs.
	actRemoveLogs
	// actDeleteWorkload deletes the workload's record, when every action before it succeeded.
	actDeleteWorkload
	// actWriteStatus writes the reported instances and the phase to the workload's status:
	// Phase when set, else the phase the reports sum up to.
	actWriteStatus
)

// onFail says what a failed action does besides collecting its error. In every case the
// actions after it with the same ID (its slot) are skipped.
type onFail int

const (
	failSkip        onFail = iota // nothing more
	failReport                    // report Instance
	failReportError               // report Instance as failed, with the error as its message
	failAbort                     // end the reconcile at once, without a status
)

// action is one step of a plan.
type action struct {
	Kind actionKind
	// ID is the instance acted on; Slot its slot. Empty for the workload's own actions.
	ID   string
	Slot int
	// Instance is what a report reports, what a start begins from (its restarts and
	// address), and what a failed removal reports (see OnFail).
	Instance v1alpha1.Instance
	// Why says why an instance is removed, for the reader of a plan.
	Why string
	// ob is the instance a removal removes.
	ob     observed
	OnFail onFail
	// Event is the event an event action records.
	Type, Reason, Message string
	// Phase (with Reason and Message) is the phase a status write sets; Replicas the count
	// a computed phase is measured against.
	Phase    v1alpha1.Phase
	Replicas int
}

// steps is a plan: the actions in order, and how soon to look again when they all succeed
// (0: on the next change or resync).
type steps struct {
	Actions []action
	Requeue time.Duration
}

func (s *steps) add(a action) { s.Actions = append(s.Actions, a) }

func (s *steps) event(id string, slot int, typ, reason, msg string) {
	s.add(action{Kind: actEvent, ID: id, Slot: slot, Type: typ, Reason: reason, Message: msg})
}

// again asks to look again after d, unless an earlier look is already asked for.
func (s *steps) again(d time.Duration) {
	if d > 0 && (s.Requeue == 0 || d < s.Requeue) {
		s.Requeue = d
	}
}

// tierOf is the tier w's instances run at: the assessed one, the container tier before
// assessment.
func tierOf(w *v1alpha1.Workload) v1alpha1.Tier {
	if w.Status != nil && w.Status.Tier.Valid() {
		return w.Status.Tier
	}
	return v1alpha1.TierContainer
}

// replicasOf is how many slots of w should run: the scaler's count with spec.scaling,
// else spec.replicas; none while w is held (a restore is under way).
func replicasOf(w *v1alpha1.Workload) int {
	if _, held := w.Metadata.Annotations[v1alpha1.AnnotationHold]; held {
		return 0
	}
	return int(w.DesiredReplicas())
}

func deleting(w *v1alpha1.Workload) bool {
	_, ok := w.Metadata.Annotations[v1alpha1.AnnotationDeletionRequested]
	return ok
}

// probeable returns, in slot order, the instances of o whose health checks the plan reads:
// those in a wanted slot, started from the current spec by the tier's driver, running,
// of a workload with a health check.
func probeable(o observation) []string {
	w := o.Workload
	if w == nil || deleting(w) || o.Driver == nil || w.Spec.Health == nil {
		return nil
	}
	hash := specHash(w, tierOf(w))
	var ids []string
	for slot := range replicasOf(w) {
		id := InstanceID(o.Name, slot)
		ob, ok := o.Observed[id]
		if ok && ob.driver == o.Driver && ob.status.Labels[LabelSpecHash] == hash && ob.status.State == runtime.StateRunning {
			ids = append(ids, id)
		}
	}
	return ids
}

// plan decides what makes the workload's instances match its spec.
func plan(o observation) steps {
	var s steps
	w := o.Workload
	if w == nil || deleting(w) {
		// Every instance goes, with its logs (a new workload of the same name starts with
		// empty logs; volumes stay: they are data).
		for _, id := range sortedIDs(o.Observed) {
			s.add(action{Kind: actRemove, ID: id, Slot: o.Observed[id].status.Slot, ob: o.Observed[id], Why: "the workload was deleted"})
			s.event(id, o.Observed[id].status.Slot, "Normal", "Removed", "the workload was deleted")
			s.add(action{Kind: actRemoveLogs, ID: id, Slot: o.Observed[id].status.Slot})
		}
		if w != nil {
			s.add(action{Kind: actDeleteWorkload})
		}
		return s
	}
	tier := tierOf(w)
	if o.Driver == nil {
		// Nothing can run: remove what runs elsewhere and say why.
		reason, msg := "NoDriver", fmt.Sprintf("no driver on this host serves the %s tier (%v)", tier, o.NoDriver)
		if o.Where.NodeVM {
			// Never on the host's kernel instead: the class must have a kernel of its own.
			reason, msg = "NoNodeVMs", fmt.Sprintf("the replicas must run in node VMs of class %s (%s), and cannot: %v", o.Where.Class, o.Where.Reason, o.NoDriver)
		}
		return refuse(s, o, "no driver serves the tier", reason, msg)
	}
	if o.Where.NodeVM {
		if msg := networked(w, o.Driver); msg != "" {
			return refuse(s, o, "node VMs give it no network", "NodeVMNoNetwork", msg)
		}
	}

	hash := specHash(w, tier)
	replicas := replicasOf(w)
	prev := map[string]v1alpha1.Instance{}
	if w.Status != nil {
		for _, in := range w.Status.Instances {
			prev[in.ID] = in
		}
	}
	left := make(map[string]observed, len(o.Observed))
	for id, ob := range o.Observed {
		left[id] = ob
	}
	for slot := range replicas {
		id := InstanceID(o.Name, slot)
		ob, exists := left[id]
		delete(left, id)
		planSlot(&s, o, slot, tier, hash, prev[id], ob, exists)
	}
	// Slots above the replica count are scaled down, from the top.
	why := "scaled down"
	if _, held := w.Metadata.Annotations[v1alpha1.AnnotationHold]; held {
		why = "held"
	}
	for _, id := range sortedIDs(left) {
		s.add(action{Kind: actRemove, ID: id, Slot: left[id].status.Slot, ob: left[id], Why: why})
		s.event(id, left[id].status.Slot, "Normal", "Removed", "the slot is no longer wanted (replicas "+strconv.Itoa(replicas)+")")
	}
	s.add(action{Kind: actWriteStatus, Replicas: replicas})
	return s
}

// refuse plans a workload none of whose replicas can run: what runs is removed, the
// status says why (reason, msg), an event records it when the reason is new, and the
// workload is looked at again in a minute.
func refuse(s steps, o observation, why, reason, msg string) steps {
	for _, id := range sortedIDs(o.Observed) {
		s.add(action{Kind: actRemove, ID: id, Slot: o.Observed[id].status.Slot, ob: o.Observed[id], Why: why, OnFail: failAbort})
	}
	if readyReason(o.Workload) != reason {
		s.event("", 0, "Warning", reason, msg)
	}
	s.add(action{Kind: actWriteStatus, Phase: v1alpha1.PhaseFailed, Reason: reason, Message: msg})
	s.Requeue = time.Minute
	return s
}

// readyReason is the reason of w's Ready condition, "" without one.
func readyReason(w *v1alpha1.Workload) string {
	if w.Status == nil {
		return ""
	}
	for _, c := range w.Status.Conditions {
		if c.Type == "Ready" {
			return c.Reason
		}
	}
	return ""
}

// planSlot plans one wanted slot: before is its entry in the last status, ob its instance
// when exists.
func planSlot(s *steps, o observation, slot int, tier v1alpha1.Tier, hash string, before v1alpha1.Instance, ob observed, exists bool) {
	w := o.Workload
	id := InstanceID(o.Name, slot)
	in := v1alpha1.Instance{ID: id, Tier: tier, Driver: o.Driver.Name(), Restarts: before.Restarts, IP: before.IP}
	if exists && (ob.driver != o.Driver || ob.status.Labels[LabelSpecHash] != hash) {
		s.add(action{Kind: actRemove, ID: id, Slot: slot, ob: ob, Why: "the spec changed", Instance: in, OnFail: failReportError})
		s.event(id, slot, "Normal", "Replaced", "the spec changed: the instance is started again from the new spec")
		exists = false
		in.Restarts = 0
	}
	if exists && (ob.status.State == runtime.StateExited || ob.status.State == runtime.StateFailed) {
		st := ob.status
		if before.State != string(runtime.StateExited) && before.State != string(runtime.StateFailed) {
			typ, reason, msg := exitEvent(st)
			s.event(id, slot, typ, reason, msg)
		}
		if !restartable(w.Spec.RestartPolicy, st) {
			s.add(action{Kind: actReport, ID: id, Slot: slot, Instance: observedInstance(in, st)})
			return
		}
		delay := backoff(o.RestartBackoff, o.MaxRestartBackoff, int(in.Restarts))
		if wait := st.FinishedAt.Add(delay).Sub(o.Now); wait > 0 {
			out := observedInstance(in, st)
			out.Message = fmt.Sprintf("%s; restarting in %s", out.Message, wait.Round(time.Second))
			s.add(action{Kind: actReport, ID: id, Slot: slot, Instance: out})
			s.again(wait)
			return
		}
		s.add(action{Kind: actRestartRemove, ID: id, Slot: slot, ob: ob, Why: "exited", Instance: observedInstance(in, st), OnFail: failReport})
		in.Restarts++
		exists = false
		s.event(id, slot, "Normal", "Restarted", fmt.Sprintf("restart %d after exit code %d", in.Restarts, st.ExitCode))
	}
	h := o.Health[id]
	if exists && ob.status.State == runtime.StateRunning && w.Spec.Health != nil {
		s.again(h.Again)
		if h.Restart {
			s.event(id, slot, "Warning", "Unhealthy", h.Reason)
			s.add(action{Kind: actRestartRemove, ID: id, Slot: slot, ob: ob, Why: "unhealthy", Instance: observedInstance(in, ob.status), OnFail: failReport})
			in.Restarts++
			exists = false
			s.event(id, slot, "Normal", "Restarted", fmt.Sprintf("restart %d: the health check failed", in.Restarts))
		}
	}
	if !exists {
		s.add(action{Kind: actStillWanted, ID: id, Slot: slot})
		if wait, why := startWait(o.Starts, id, hash, o.Now); wait > 0 {
			// The last start of this spec failed: wait out its backoff.
			in.State, in.Message = string(runtime.StateFailed), fmt.Sprintf("%s; starting again in %s", why, wait.Round(time.Second))
			s.add(action{Kind: actReport, ID: id, Slot: slot, Instance: in})
			s.again(wait)
			return
		}
		s.add(action{Kind: actStart, ID: id, Slot: slot, Instance: in})
		return
	}
	out := observedInstance(in, ob.status)
	if h.Failures > 0 && w.Spec.Health != nil {
		out.Message = fmt.Sprintf("health check failing (%d of %d): %s", h.Failures, w.Spec.Health.FailureThreshold, h.Message)
	}
	s.add(action{Kind: actKeep, ID: id, Slot: slot, Instance: out})
}

// exitEvent is the event that records an instance's end.
func exitEvent(st runtime.Status) (typ, reason, msg string) {
	if st.OOMKilled {
		return "Warning", "OOMKilled", fmt.Sprintf("the kernel killed the instance at its memory limit (exit code %d)", st.ExitCode)
	}
	typ = "Normal"
	if st.ExitCode != 0 || st.State == runtime.StateFailed {
		typ = "Warning"
	}
	return typ, "Exited", fmt.Sprintf("exited with code %d %s", st.ExitCode, st.Message)
}

// String gives an action as one line: what it does, to what, and why.
func (a action) String() string {
	var b strings.Builder
	switch a.Kind {
	case actRemove:
		fmt.Fprintf(&b, "remove %s (%s)", a.ID, a.Why)
	case actRestartRemove:
		fmt.Fprintf(&b, "stop %s for a restart (%s)", a.ID, a.Why)
	case actEvent:
		fmt.Fprintf(&b, "event %s %s %s: %s", a.ID, a.Type, a.Reason, a.Message)
	case actReport:
		fmt.Fprintf(&b, "report %s", instanceString(a.Instance))
	case actKeep:
		fmt.Fprintf(&b, "keep %s", instanceString(a.Instance))
	case actStillWanted:
		fmt.Fprintf(&b, "check %s is still wanted", a.ID)
	case actStart:
		fmt.Fprintf(&b, "start %s restarts=%d", a.ID, a.Instance.Restarts)
	case actRemoveLogs:
		fmt.Fprintf(&b, "remove the logs of %s", a.ID)
	case actDeleteWorkload:
		b.WriteString("delete the workload")
	case actWriteStatus:
		b.WriteString("write the status")
		if a.Phase != "" {
			fmt.Fprintf(&b, " %s %s: %s", a.Phase, a.Reason, a.Message)
		}
	default:
		fmt.Fprintf(&b, "action %d", a.Kind)
	}
	switch a.OnFail {
	case failReport:
		b.WriteString(" [on failure: report it]")
	case failReportError:
		b.WriteString(" [on failure: report it failed]")
	case failAbort:
		b.WriteString(" [on failure: end the reconcile]")
	}
	return b.String()
}

// instanceString gives a reported instance as ID, state, restarts and message.
func instanceString(in v1alpha1.Instance) string {
	s := fmt.Sprintf("%s %s restarts=%d", in.ID, in.State, in.Restarts)
	if in.IP != "" {
		s += " ip=" + in.IP
	}
	if in.Message != "" {
		s += ": " + in.Message
	}
	return s
}

// sortedIDs returns the keys of m in slot order.
func sortedIDs(m map[string]observed) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
