package objects

import (
	"encoding/json"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

// TestMergeWorkloadStatusKeepsBackup: a spec update through the API keeps what the
// backup schedule recorded.
func TestMergeWorkloadStatusKeepsBackup(t *testing.T) {
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	bs := &v1alpha1.BackupStatus{LastAttempt: &at, LastSuccess: &at, LastBackupID: "0123456789abcdef"}
	cur, _ := json.Marshal(v1alpha1.WorkloadStatus{Tier: "container", Phase: "Running", Backup: bs})
	admitted, _ := json.Marshal(v1alpha1.WorkloadStatus{Tier: "container", Phase: "Pending"})
	var got v1alpha1.WorkloadStatus
	if err := json.Unmarshal(MergeWorkloadStatus(cur, admitted), &got); err != nil {
		t.Fatal(err)
	}
	if got.Backup == nil || got.Backup.LastBackupID != "0123456789abcdef" || !got.Backup.LastSuccess.Equal(at) {
		t.Errorf("merged backup status %+v: want the schedule's record kept", got.Backup)
	}
}
