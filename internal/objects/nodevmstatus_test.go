package objects

import (
	"encoding/json"
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

// TestMergeWorkloadStatusTakesNodeVM: a spec update through the API takes admission's new
// decision on node VMs, and keeps what the daemon observed.
func TestMergeWorkloadStatusTakesNodeVM(t *testing.T) {
	cur, _ := json.Marshal(v1alpha1.WorkloadStatus{Tier: "container", Phase: "Running",
		NodeVM: &v1alpha1.NodeVMDecision{Class: "acme/internal/internal", Reason: "placement.nodeVM never", Warning: "w"}})
	admitted, _ := json.Marshal(v1alpha1.WorkloadStatus{Tier: "container", Phase: "Pending",
		NodeVM: &v1alpha1.NodeVMDecision{Run: true, Class: "acme/internal/internal", Reason: "policy: tenancy multi"}})
	var got v1alpha1.WorkloadStatus
	if err := json.Unmarshal(MergeWorkloadStatus(cur, admitted), &got); err != nil {
		t.Fatal(err)
	}
	if got.NodeVM == nil || !got.NodeVM.Run || got.NodeVM.Reason != "policy: tenancy multi" || got.NodeVM.Warning != "" || got.Phase != "Running" {
		t.Errorf("merged status %+v, node VM %+v: want admission's node VM decision and the observed phase", got, got.NodeVM)
	}
}
