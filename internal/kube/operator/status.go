package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/kube/apply"
	"strata.dev/strata/internal/kube/crd"
)

// Condition types of a Workload's status.
const (
	ConditionReady    = "Ready"
	ConditionAssessed = "Assessed"
	ConditionDegraded = "Degraded"
)

// writeStatus writes the status of every live Workload whose status changed.
func (r *Reconciler) writeStatus(ctx context.Context, ns string, live []*crd.Workload, verdicts map[string]*verdict) error {
	observed, err := apply.Status(ctx, r.direct, ns)
	if err != nil {
		return err
	}
	byName := map[string]*apply.WorkloadStatus{}
	for i := range observed {
		byName[observed[i].Name] = &observed[i]
	}
	now := r.opts.Now().UTC().Truncate(time.Second)
	for _, w := range live {
		st := workloadStatus(w.Status, verdicts[w.Name], byName[w.Name], now)
		if sameJSON(w.Status, st) {
			continue
		}
		w.Status = st
		if err := r.cached.Status().Update(ctx, w); err != nil {
			return fmt.Errorf("write the status of workload %s/%s: %w", ns, w.Name, err)
		}
	}
	return nil
}

// workloadStatus is the status of a Workload from its verdict and what the cluster reports
// (nil when nothing runs it yet). Conditions keep their transition time while their status
// stays.
func workloadStatus(prev *v1alpha1.WorkloadStatus, v *verdict, obs *apply.WorkloadStatus, now time.Time) *v1alpha1.WorkloadStatus {
	st := &v1alpha1.WorkloadStatus{Phase: v1alpha1.PhasePending}
	if prev != nil {
		st.Scaling = prev.Scaling
	}
	var conds []v1alpha1.Condition
	if v.assessed {
		st.Tier, st.Reasons = v.decision.Tier, v.decision.Reasons
	}
	switch {
	case !v.assessed:
		conds = append(conds, v1alpha1.Condition{Type: ConditionAssessed, Status: v1alpha1.ConditionFalse, Reason: v.reason, Message: v.problem.Error()})
	case v.reason == "PolicyViolation":
		conds = append(conds, v1alpha1.Condition{Type: ConditionAssessed, Status: v1alpha1.ConditionFalse, Reason: v.reason, Message: v.problem.Error()})
	default:
		conds = append(conds, v1alpha1.Condition{Type: ConditionAssessed, Status: v1alpha1.ConditionTrue, Reason: tierReason(v.decision.Tier), Message: assessment(v.decision.Tier, v.decision.Reasons)})
	}
	switch {
	case v.problem != nil:
		st.Phase = v1alpha1.PhaseFailed
		conds = append(conds,
			v1alpha1.Condition{Type: ConditionReady, Status: v1alpha1.ConditionFalse, Reason: v.reason, Message: v.problem.Error()},
			v1alpha1.Condition{Type: ConditionDegraded, Status: v1alpha1.ConditionTrue, Reason: v.reason, Message: v.problem.Error()})
	case obs == nil:
		conds = append(conds,
			v1alpha1.Condition{Type: ConditionReady, Status: v1alpha1.ConditionFalse, Reason: "NotApplied", Message: "no Deployment, StatefulSet or VirtualMachine of the workload in the namespace yet"},
			v1alpha1.Condition{Type: ConditionDegraded, Status: v1alpha1.ConditionFalse, Reason: "NotApplied"})
	default:
		st.Phase, st.Replicas, st.ReadyReplicas, st.Instances = obs.Phase(), obs.Replicas, obs.ReadyReplicas, obs.Instances()
		ready := obs.ReadyCondition(now)
		degraded := v1alpha1.Condition{Type: ConditionDegraded, Status: v1alpha1.ConditionFalse, Reason: string(st.Phase)}
		if st.Phase == v1alpha1.PhaseDegraded || st.Phase == v1alpha1.PhaseFailed {
			degraded.Status, degraded.Message = v1alpha1.ConditionTrue, ready.Message
		}
		conds = append(conds, ready, degraded)
	}
	for _, c := range conds {
		c.LastTransitionTime = now
		if p := find(prev, c.Type); p != nil && p.Status == c.Status {
			c.LastTransitionTime = p.LastTransitionTime
		}
		st.Conditions = append(st.Conditions, c)
	}
	return st
}

func tierReason(t v1alpha1.Tier) string {
	switch t {
	case v1alpha1.TierVM:
		return "TierVM"
	case v1alpha1.TierSandbox:
		return "TierSandbox"
	}
	return "TierContainer"
}

// assessment says which tier, and why.
func assessment(t v1alpha1.Tier, reasons []v1alpha1.Reason) string {
	msg := "tier " + string(t)
	if len(reasons) == 0 {
		return msg + ": no rule raised it"
	}
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = r.Rule + ": " + r.Message
	}
	return msg + ": " + strings.Join(parts, "; ")
}

func find(st *v1alpha1.WorkloadStatus, typ string) *v1alpha1.Condition {
	if st == nil {
		return nil
	}
	for i := range st.Conditions {
		if st.Conditions[i].Type == typ {
			return &st.Conditions[i]
		}
	}
	return nil
}

// sameJSON compares two statuses as the API server stores them.
func sameJSON(a, b *v1alpha1.WorkloadStatus) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
