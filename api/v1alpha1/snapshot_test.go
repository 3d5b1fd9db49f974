package v1alpha1

import (
	"strings"
	"testing"
)

func TestValidateBackupHooks(t *testing.T) {
	tests := []struct {
		name  string
		hooks BackupHooks
		field string // the one field in error; empty for valid hooks
	}{
		{"both", BackupHooks{Pre: []string{"sh", "-c", "sync"}, Post: []string{"true"}}, ""},
		{"pre only", BackupHooks{Pre: []string{"sync"}}, ""},
		{"empty pre", BackupHooks{Pre: []string{}}, "spec.backup.hooks.pre"},
		{"no program in post", BackupHooks{Post: []string{""}}, "spec.backup.hooks.post"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.hooks
			w := &Workload{Metadata: ObjectMeta{Name: "a"}, Spec: WorkloadSpec{Image: "i", Backup: &BackupSpec{Hooks: &h}}}
			w.SetDefaults()
			errs := ValidateWorkload(w)
			if tt.field == "" {
				if len(errs) > 0 {
					t.Fatalf("want valid, got %v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tt.field || !strings.Contains(errs[0].Detail, "name the program") {
				t.Fatalf("want one error at %s, got %v", tt.field, errs)
			}
		})
	}
}
