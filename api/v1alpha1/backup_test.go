package v1alpha1

import (
	"strings"
	"testing"
	"time"
)

func TestParseBackupSchedule(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"@hourly", time.Hour, ""},
		{"@daily", 24 * time.Hour, ""},
		{"@every 6h", 6 * time.Hour, ""},
		{"@every 90m", 90 * time.Minute, ""},
		{"@every 10s", 10 * time.Second, ""},
		{"@every 1s", 0, "too often"},
		{"@every soon", 0, "not a duration"},
		{"0 * * * *", 0, "use @hourly, @daily or @every"},
		{"@weekly", 0, "use @hourly, @daily or @every"},
	}
	for _, tt := range tests {
		got, err := ParseBackupSchedule(tt.in)
		if tt.err == "" && (err != nil || got != tt.want) {
			t.Errorf("%q: %v %v, want %v", tt.in, got, err, tt.want)
		}
		if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%q: %v, want an error saying %q", tt.in, err, tt.err)
		}
	}
}

func TestValidateBackupSchedule(t *testing.T) {
	tests := []struct {
		name   string
		backup BackupSpec
		field  string // the one field in error; empty when valid
	}{
		{"schedule only", BackupSpec{Schedule: "@daily"}, ""},
		{"all", BackupSpec{Schedule: "@every 6h", Keep: &BackupKeep{Last: 3, Daily: 7}, Repo: "offsite", Group: "shop"}, ""},
		{"bad schedule", BackupSpec{Schedule: "daily"}, "spec.backup.schedule"},
		{"keeps nothing", BackupSpec{Schedule: "@daily", Keep: &BackupKeep{}}, "spec.backup.keep"},
		{"negative keep", BackupSpec{Keep: &BackupKeep{Last: -1}}, "spec.backup.keep"},
		{"bad repo", BackupSpec{Repo: "Off_Site"}, "spec.backup.repo"},
		{"bad group", BackupSpec{Group: "a b"}, "spec.backup.group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.backup
			w := &Workload{Metadata: ObjectMeta{Name: "a"}, Spec: WorkloadSpec{Image: "i", Backup: &b}}
			w.SetDefaults()
			errs := ValidateWorkload(w)
			if tt.field == "" {
				if len(errs) > 0 {
					t.Fatalf("want valid, got %v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tt.field {
				t.Fatalf("want one error at %s, got %v", tt.field, errs)
			}
		})
	}
}

// TestBackupKeepDefault: a schedule without keep keeps the last DefaultBackupKeepLast;
// without a schedule nothing is added.
func TestBackupKeepDefault(t *testing.T) {
	w := &Workload{Spec: WorkloadSpec{Image: "i", Backup: &BackupSpec{Schedule: "@daily"}}}
	w.SetDefaults()
	if k := w.Spec.Backup.Keep; k == nil || k.Last != DefaultBackupKeepLast {
		t.Errorf("keep %+v, want last %d", k, DefaultBackupKeepLast)
	}
	w = &Workload{Spec: WorkloadSpec{Image: "i", Backup: &BackupSpec{Hooks: &BackupHooks{Pre: []string{"sync"}}}}}
	w.SetDefaults()
	if w.Spec.Backup.Keep != nil {
		t.Errorf("keep %+v without a schedule, want none", w.Spec.Backup.Keep)
	}
}
