package v1alpha1

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestScalingDefaults checks the defaults of spec.scaling, that an explicit zero cooldown is
// kept, and that a workload without spec.scaling gets none.
func TestScalingDefaults(t *testing.T) {
	w := &Workload{Metadata: ObjectMeta{Name: "a"}, Spec: WorkloadSpec{Scaling: &Scaling{Max: 5}}}
	w.SetDefaults()
	sc := w.Spec.Scaling
	if sc.Min != 1 || sc.TargetCPUPercent != 70 || sc.LeadSeconds != 0 || sc.ScaleInCooldownSeconds == nil || *sc.ScaleInCooldownSeconds != 300 {
		t.Errorf("defaults: %+v (cooldown %v), want min 1, targetCPUPercent 70, leadSeconds 0, cooldown 300", sc, sc.ScaleInCooldownSeconds)
	}
	once, _ := json.Marshal(w)
	w.SetDefaults()
	twice, _ := json.Marshal(w)
	if string(once) != string(twice) {
		t.Errorf("SetDefaults is not idempotent:\n%s\n%s", once, twice)
	}
	if errs := ValidateWorkload(w); len(errs) > 0 {
		t.Errorf("a defaulted scaling section is invalid: %v", errs)
	}

	zero := int32(0)
	kept := &Workload{Metadata: ObjectMeta{Name: "b"}, Spec: WorkloadSpec{Scaling: &Scaling{Max: 2, ScaleInCooldownSeconds: &zero}}}
	kept.SetDefaults()
	if *kept.Spec.Scaling.ScaleInCooldownSeconds != 0 {
		t.Errorf("an explicit cooldown of 0 became %d", *kept.Spec.Scaling.ScaleInCooldownSeconds)
	}

	none := &Workload{Metadata: ObjectMeta{Name: "c"}}
	none.SetDefaults()
	if none.Spec.Scaling != nil {
		t.Errorf("a workload without scaling got %+v", none.Spec.Scaling)
	}
}

func TestValidateScaling(t *testing.T) {
	neg := int32(-1)
	tests := []struct {
		name    string
		scaling Scaling
		field   string // the one field in error; empty for a valid section
		detail  string
	}{
		{"valid", Scaling{Min: 2, Max: 10, TargetCPUPercent: 60, Predictive: true, LeadSeconds: 30}, "", ""},
		{"min equals max", Scaling{Min: 3, Max: 3}, "", ""},
		{"max below min", Scaling{Min: 4, Max: 3}, "spec.scaling.max", "must not be less than min (4)"},
		{"max missing", Scaling{}, "spec.scaling.max", "must be between 1 and 10000"},
		{"max too large", Scaling{Max: MaxReplicas + 1}, "spec.scaling.max", "must be between 1 and 10000"},
		{"min negative", Scaling{Min: -2, Max: 3}, "spec.scaling.min", "must be between 1 and 10000"},
		{"percent zero after defaults is 70", Scaling{Max: 3, TargetCPUPercent: 0}, "", ""},
		{"percent above 100", Scaling{Max: 3, TargetCPUPercent: 101}, "spec.scaling.targetCPUPercent", "between 1 and 100"},
		{"percent negative", Scaling{Max: 3, TargetCPUPercent: -5}, "spec.scaling.targetCPUPercent", "between 1 and 100"},
		{"negative lead", Scaling{Max: 3, LeadSeconds: -1}, "spec.scaling.leadSeconds", "must not be negative"},
		{"negative cooldown", Scaling{Max: 3, ScaleInCooldownSeconds: &neg}, "spec.scaling.scaleInCooldownSeconds", "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := tt.scaling
			w := &Workload{Metadata: ObjectMeta{Name: "a"}, Spec: WorkloadSpec{Scaling: &sc}}
			w.SetDefaults()
			errs := ValidateWorkload(w)
			if tt.field == "" {
				if len(errs) > 0 {
					t.Fatalf("want valid, got %v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tt.field || !strings.Contains(errs[0].Detail, tt.detail) {
				t.Fatalf("want one error at %s saying %q, got %v", tt.field, tt.detail, errs)
			}
		})
	}
}
