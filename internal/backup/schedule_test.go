package backup

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

func scheduledWorkload(name, schedule, group string, lastAttempt *time.Time) *v1alpha1.Workload {
	w := &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: name}, Spec: v1alpha1.WorkloadSpec{Image: "i"}}
	if schedule != "" || group != "" {
		w.Spec.Backup = &v1alpha1.BackupSpec{Schedule: schedule, Group: group}
	}
	if lastAttempt != nil {
		w.Status = &v1alpha1.WorkloadStatus{Backup: &v1alpha1.BackupStatus{LastAttempt: lastAttempt}}
	}
	return w
}

// TestDueBackups: a workload is due when it never had an attempt or its interval has
// passed since the last one; a group is due when any member is, and takes every member
// with a schedule; workloads being deleted and without a schedule are left out.
func TestDueBackups(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	deleting := scheduledWorkload("gone", "@hourly", "", nil)
	deleting.Metadata.Annotations = map[string]string{v1alpha1.AnnotationDeletionRequested: "now"}
	tests := []struct {
		name string
		ws   []*v1alpha1.Workload
		want string
	}{
		{"never backed up", []*v1alpha1.Workload{scheduledWorkload("a", "@hourly", "", nil)}, "[a]"},
		{"not yet", []*v1alpha1.Workload{scheduledWorkload("a", "@hourly", "", ago(59*time.Minute))}, "[]"},
		{"exactly due", []*v1alpha1.Workload{scheduledWorkload("a", "@hourly", "", ago(time.Hour))}, "[a]"},
		{"every", []*v1alpha1.Workload{scheduledWorkload("a", "@every 30s", "", ago(31*time.Second))}, "[a]"},
		{"no schedule", []*v1alpha1.Workload{scheduledWorkload("a", "", "", nil)}, "[]"},
		{"deleting", []*v1alpha1.Workload{deleting}, "[]"},
		{"group, one member due", []*v1alpha1.Workload{
			scheduledWorkload("web", "@daily", "shop", ago(time.Hour)),
			scheduledWorkload("db", "@hourly", "shop", ago(2*time.Hour)),
			scheduledWorkload("cache", "@daily", "", ago(time.Hour)),
		}, "[db,web@shop]"},
		{"two on their own", []*v1alpha1.Workload{
			scheduledWorkload("b", "@hourly", "", nil),
			scheduledWorkload("a", "@hourly", "", nil),
		}, "[a b]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, s := range dueBackups(tt.ws, now) {
				g := strings.Join(s.workloads, ",")
				if s.group != "" {
					g += "@" + s.group
				}
				got = append(got, g)
			}
			if fmt.Sprint(got) != tt.want {
				t.Errorf("due %v, want %s", got, tt.want)
			}
		})
	}
}

// TestConsistencyOf: application only when every workload's hook ran.
func TestConsistencyOf(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{[]string{"application"}, "application"},
		{[]string{"crash", "crash"}, "crash"},
		{[]string{"application", "crash"}, "mixed"},
	} {
		var ws []savedWorkload
		for _, c := range tt.in {
			ws = append(ws, savedWorkload{Consistency: c})
		}
		if got := consistencyOf(ws); got != tt.want {
			t.Errorf("%v: %s, want %s", tt.in, got, tt.want)
		}
	}
}
