package v1alpha1

import (
	"encoding/json"
	"testing"
)

// TestWorkloadDefaults checks the defaults DESIGN fixes, and that applying them twice changes nothing.
func TestWorkloadDefaults(t *testing.T) {
	w := &Workload{Metadata: ObjectMeta{Name: "a"}, Spec: WorkloadSpec{Ports: []Port{{Port: 80}}, Health: &HealthCheck{HTTP: &HTTPProbe{Port: 80}}}}
	w.SetDefaults()
	s := w.Spec
	checks := map[string][2]string{
		"apiVersion":    {w.APIVersion, GroupVersion},
		"kind":          {w.Kind, KindWorkload},
		"isolation":     {string(s.Isolation), "auto"},
		"segment":       {s.Segment, "default"},
		"restartPolicy": {string(s.RestartPolicy), "Always"},
		"cpu":           {s.Resources.CPU.String(), "100m"},
		"memory":        {s.Resources.Memory.String(), "128Mi"},
		"os":            {string(s.Traits.OS), "linux"},
		"trust":         {string(s.Traits.Trust), "internal"},
		"data":          {string(s.Traits.Data), "internal"},
		"tenancy":       {string(s.Traits.Tenancy), "single"},
		"protocol":      {string(s.Ports[0].Protocol), "tcp"},
		"health path":   {s.Health.HTTP.Path, "/"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if s.ReplicaCount() != 1 || s.Traits.Privileged || s.Traits.ImageAvailable == nil || !*s.Traits.ImageAvailable {
		t.Errorf("replicas %d, privileged %v, imageAvailable %v: want 1, false, true", s.ReplicaCount(), s.Traits.Privileged, s.Traits.ImageAvailable)
	}
	once, _ := json.Marshal(w)
	w.SetDefaults()
	twice, _ := json.Marshal(w)
	if string(once) != string(twice) {
		t.Errorf("SetDefaults is not idempotent:\n%s\n%s", once, twice)
	}
	if errs := ValidateWorkload(w); len(errs) > 0 {
		t.Errorf("a defaulted minimal workload is invalid: %v", errs)
	}
}

func TestExplicitZeroReplicasKept(t *testing.T) {
	zero := int32(0)
	w := &Workload{Metadata: ObjectMeta{Name: "a"}, Spec: WorkloadSpec{Replicas: &zero}}
	w.SetDefaults()
	if w.Spec.ReplicaCount() != 0 {
		t.Errorf("replicas 0 became %d", w.Spec.ReplicaCount())
	}
}

func TestIsolationClass(t *testing.T) {
	w := &Workload{Metadata: ObjectMeta{Name: "a", Labels: map[string]string{LabelTenant: "shop"}}}
	w.Spec.Traits.Data = DataConfidential
	w.SetDefaults()
	if got := w.IsolationClass(); got != "shop/internal/confidential" {
		t.Errorf("class %q, want shop/internal/confidential", got)
	}
	w.Spec.Placement.IsolationClass = "pci"
	if got := w.IsolationClass(); got != "pci" {
		t.Errorf("class %q, want the explicit pci", got)
	}
	anon := &Workload{Metadata: ObjectMeta{Name: "b"}}
	anon.SetDefaults()
	if got := anon.IsolationClass(); got != "default/internal/internal" {
		t.Errorf("class %q, want default/internal/internal", got)
	}
}

func TestTierOrder(t *testing.T) {
	if !TierContainer.Weaker(TierSandbox) || !TierSandbox.Weaker(TierVM) || TierVM.Weaker(TierContainer) {
		t.Error("tiers are not ordered container < sandbox < vm")
	}
	if Tier("kvm").Valid() || !TierVM.Valid() {
		t.Error("Valid accepts an unknown tier or refuses vm")
	}
	if _, ok := IsolationAuto.Tier(); ok {
		t.Error("auto is not a tier")
	}
}

func TestFleetDefaultsAndValidation(t *testing.T) {
	f := &Fleet{Metadata: ObjectMeta{Name: "dc1"}}
	f.SetDefaults()
	if f.Spec.Overheads.VM.Memory.String() != "256Mi" || f.Spec.Overheads.NodeReserved.CPU.String() != "250m" {
		t.Errorf("overhead defaults: vm %v, nodeReserved %v", f.Spec.Overheads.VM, f.Spec.Overheads.NodeReserved)
	}
	errs := ValidateFleet(f)
	if len(errs) != 1 || errs[0].Field != "spec.hosts" {
		t.Errorf("a fleet without hosts: %v", errs)
	}
}
