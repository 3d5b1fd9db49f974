package objects

import (
	"encoding/json"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/store"
)

func TestWorkloadRoundTrip(t *testing.T) {
	w := &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: "web", Labels: map[string]string{"a": "b"}}}
	w.Spec.Image = "img"
	w.SetDefaults()
	rec, err := Record(v1alpha1.KindWorkload, w.Metadata, w.Spec, v1alpha1.WorkloadStatus{Tier: v1alpha1.TierSandbox})
	if err != nil {
		t.Fatal(err)
	}
	rec.ResourceVersion, rec.Generation, rec.UID, rec.CreatedAt = 7, 2, "u", time.Unix(0, 0)
	got, err := Workload(rec)
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Image != "img" || got.Status.Tier != v1alpha1.TierSandbox || got.Metadata.ResourceVersion != "7" ||
		got.Metadata.Generation != 2 || got.Metadata.Labels["a"] != "b" || got.Kind != v1alpha1.KindWorkload {
		t.Errorf("round trip lost something: %+v", got)
	}
	if _, err := Record(v1alpha1.KindWorkload, v1alpha1.ObjectMeta{Name: "x", ResourceVersion: "abc"}, w.Spec, nil); err == nil {
		t.Error("a non-numeric resourceVersion was accepted")
	}
	if _, err := Decode(store.Object{Kind: "Gadget", Name: "x"}); err == nil {
		t.Error("an unknown kind decoded")
	}
}

func TestMergeWorkloadStatus(t *testing.T) {
	cur, _ := json.Marshal(v1alpha1.WorkloadStatus{Tier: "container", Phase: "Running", Instances: []v1alpha1.Instance{{ID: "web-0", State: "running"}}})
	admitted, _ := json.Marshal(v1alpha1.WorkloadStatus{Tier: "sandbox", Phase: "Pending", Reasons: []v1alpha1.Reason{{Rule: "r"}}})
	var got v1alpha1.WorkloadStatus
	if err := json.Unmarshal(MergeWorkloadStatus(cur, admitted), &got); err != nil {
		t.Fatal(err)
	}
	if got.Tier != "sandbox" || len(got.Reasons) != 1 || got.Phase != "Running" || len(got.Instances) != 1 {
		t.Errorf("merged %+v: want the new assessment and the observed instances and phase", got)
	}
}

// TestMergeWorkloadStatusKeepsScaling: a spec update through the API keeps the scaler's
// count and last decision, even when the admitted status carries none.
func TestMergeWorkloadStatusKeepsScaling(t *testing.T) {
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	scaled := &v1alpha1.ScalingStatus{Replicas: 3, LastDecision: &v1alpha1.ScalingDecision{
		Time: at, From: 1, To: 3, Reason: "scaled 1 -> 3", DemandCores: 0.6, Policy: v1alpha1.ScalingReactive}}
	cur, _ := json.Marshal(v1alpha1.WorkloadStatus{Tier: "container", Phase: "Running", Scaling: scaled})
	admitted, _ := json.Marshal(v1alpha1.WorkloadStatus{Tier: "container", Phase: "Pending"})
	var got v1alpha1.WorkloadStatus
	if err := json.Unmarshal(MergeWorkloadStatus(cur, admitted), &got); err != nil {
		t.Fatal(err)
	}
	if got.Scaling == nil || got.Scaling.Replicas != 3 || got.Scaling.LastDecision == nil ||
		!got.Scaling.LastDecision.Time.Equal(at) || got.Scaling.LastDecision.Reason != "scaled 1 -> 3" {
		t.Errorf("merged scaling %+v: want the scaler's count and decision kept", got.Scaling)
	}
}

func TestResourceFor(t *testing.T) {
	for _, name := range []string{"workloads", "workload", "Workload"} {
		if r, ok := ResourceFor(name); !ok || r.Plural != "workloads" {
			t.Errorf("%s: %+v %v", name, r, ok)
		}
	}
	if _, ok := ResourceFor("pods"); ok {
		t.Error("pods is not a resource")
	}
}
