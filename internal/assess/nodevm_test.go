package assess

import (
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

// tenantWorkload is a defaulted workload of a tenant, changed by the test.
func tenantWorkload(tenant string, change func(s *v1alpha1.WorkloadSpec)) *v1alpha1.Workload {
	w := workload(change)
	if tenant != "" {
		w.Metadata.Labels = map[string]string{v1alpha1.LabelTenant: tenant}
	}
	return w
}

// TestNodeVMDecision: where replicas run, by the built-in policy and a custom one, with
// placement.nodeVM, the vm tier and placement.isolationClass.
func TestNodeVMDecision(t *testing.T) {
	custom, errs := LoadPolicy("p.yaml", []byte(policyHead+` []
  nodeVM:
    when: class.tenant == 'acme' || class.name.startsWith('pci-')
    detail: "'tenant ' + class.tenant + ', class ' + class.name"
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	noDetail, errs := LoadPolicy("p.yaml", []byte(policyHead+" []\n  nodeVM: {when: \"class.trust == 'untrusted'\"}\n"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	tests := []struct {
		name    string
		engine  *Engine
		w       *v1alpha1.Workload
		want    v1alpha1.NodeVMDecision
		warning string // a part of the warning; empty: no warning
	}{
		{"default: single tenant, internal data stays on the host", Default(), workload(nil),
			v1alpha1.NodeVMDecision{Class: "default/internal/internal", Reason: "policy: tenancy single, data internal"}, ""},
		{"default: regulated data goes into node VMs", Default(),
			tenantWorkload("acme", func(s *v1alpha1.WorkloadSpec) { s.Traits.Data = "regulated" }),
			v1alpha1.NodeVMDecision{Run: true, Class: "acme/internal/regulated", Reason: "policy: data regulated"}, ""},
		{"default: multi tenancy goes into node VMs", Default(),
			workload(func(s *v1alpha1.WorkloadSpec) { s.Traits.Tenancy = "multi"; s.Traits.Trust = "trusted" }),
			v1alpha1.NodeVMDecision{Run: true, Class: "default/trusted/internal", Reason: "policy: tenancy multi"}, ""},
		{"default: both", Default(),
			workload(func(s *v1alpha1.WorkloadSpec) {
				s.Traits.Tenancy = "multi"
				s.Traits.Data = "regulated"
				s.Isolation = "sandbox"
			}),
			v1alpha1.NodeVMDecision{Run: true, Class: "default/internal/regulated", Reason: "policy: tenancy multi, data regulated"}, ""},
		{"default: confidential data alone stays on the host (as a sandbox)", Default(),
			workload(func(s *v1alpha1.WorkloadSpec) { s.Traits.Data = "confidential" }),
			v1alpha1.NodeVMDecision{Class: "default/internal/confidential", Reason: "policy: tenancy single, data confidential"}, ""},
		{"required on a class the policy keeps on the host", Default(),
			workload(func(s *v1alpha1.WorkloadSpec) { s.Placement.NodeVM = v1alpha1.NodeVMRequired }),
			v1alpha1.NodeVMDecision{Run: true, Class: "default/internal/internal", Reason: "placement.nodeVM required"}, ""},
		{"never on a class the policy keeps on the host", Default(),
			workload(func(s *v1alpha1.WorkloadSpec) { s.Placement.NodeVM = v1alpha1.NodeVMNever }),
			v1alpha1.NodeVMDecision{Class: "default/internal/internal", Reason: "placement.nodeVM never"}, ""},
		{"never on a class the policy sends into node VMs is honoured with a warning", Default(),
			workload(func(s *v1alpha1.WorkloadSpec) { s.Placement.NodeVM = v1alpha1.NodeVMNever; s.Traits.Tenancy = "multi" }),
			v1alpha1.NodeVMDecision{Class: "default/internal/internal", Reason: "placement.nodeVM never"},
			"but the policy sends it into node VMs (policy: tenancy multi)"},
		{"vm tier is its own VM", Default(),
			workload(func(s *v1alpha1.WorkloadSpec) { s.Traits.Privileged = true; s.Traits.Data = "regulated" }),
			v1alpha1.NodeVMDecision{Reason: "tier vm: each replica is a VM of its own"}, ""},
		{"required on the vm tier has no effect, and says so", Default(),
			workload(func(s *v1alpha1.WorkloadSpec) { s.Isolation = "vm"; s.Placement.NodeVM = v1alpha1.NodeVMRequired }),
			v1alpha1.NodeVMDecision{Reason: "tier vm: each replica is a VM of its own"}, "has no effect on the vm tier"},
		{"isolationClass names the class the policy reads", custom,
			tenantWorkload("shop", func(s *v1alpha1.WorkloadSpec) { s.Placement.IsolationClass = "pci-cards" }),
			v1alpha1.NodeVMDecision{Run: true, Class: "pci-cards", Reason: "policy: tenant shop, class pci-cards"}, ""},
		{"custom policy: a tenant into node VMs", custom, tenantWorkload("acme", nil),
			v1alpha1.NodeVMDecision{Run: true, Class: "acme/internal/internal", Reason: "policy: tenant acme, class acme/internal/internal"}, ""},
		{"custom policy: regulated data of another tenant stays", custom,
			tenantWorkload("shop", func(s *v1alpha1.WorkloadSpec) { s.Traits.Data = "regulated" }),
			v1alpha1.NodeVMDecision{Class: "shop/internal/regulated", Reason: "policy: tenant shop, class shop/internal/regulated"}, ""},
		{"custom policy without detail says what it evaluated", noDetail,
			workload(func(s *v1alpha1.WorkloadSpec) { s.Traits.Trust = "untrusted" }),
			v1alpha1.NodeVMDecision{Run: true, Class: "default/untrusted/internal", Reason: "policy: spec.nodeVM.when is true for class default/untrusted/internal"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.engine.Assess(tt.w)
			if err != nil {
				t.Fatal(err)
			}
			got := d.NodeVM
			warning := got.Warning
			got.Warning = ""
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			switch {
			case tt.warning == "" && warning != "":
				t.Errorf("unexpected warning %q", warning)
			case !strings.Contains(warning, tt.warning):
				t.Errorf("warning %q does not say %q", warning, tt.warning)
			}
		})
	}
}

// TestPolicyWithoutNodeVMKeepsTheDefault: a policy of rules only decides node VMs as the
// built-in policy does.
func TestPolicyWithoutNodeVMKeepsTheDefault(t *testing.T) {
	e, errs := LoadPolicy("p.yaml", []byte(policyHead+"\n  - {name: a, when: 'false', effect: atLeast, tier: vm, message: m}\n"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	d, err := e.Assess(workload(func(s *v1alpha1.WorkloadSpec) { s.Traits.Data = "regulated" }))
	if err != nil {
		t.Fatal(err)
	}
	if !d.NodeVM.Run || d.NodeVM.Reason != "policy: data regulated" {
		t.Errorf("got %+v, want node VMs by the built-in choice", d.NodeVM)
	}
}

// TestNodeVMPolicyErrors: spec.nodeVM's problems point into its expressions.
func TestNodeVMPolicyErrors(t *testing.T) {
	tests := []struct {
		name, nodeVM string
		want         []string
	}{
		{"syntax in a plain scalar", `
  nodeVM: {when: "class.tenancy == 'multi' ||"}`,
			[]string{`p.yaml:6:46: spec.nodeVM.when: Syntax error: mismatched input '<EOF>'`}},
		{"unknown function in a folded block", `
  nodeVM:
    when: >-
      class.tenancy == 'multi' ||
      class.tenant.startWith('a')
    detail: class.tenant`,
			[]string{`p.yaml:9:29: spec.nodeVM.when: undeclared reference to 'startWith'`}},
		{"unknown key", `
  nodeVM:
    when: class.sensitivity == 'high' || class.tenancy == 'multi'`,
			[]string{`p.yaml:7:11: spec.nodeVM.when: does not evaluate on the class of a workload with defaults: no such key: sensitivity (class has the keys`}},
		{"the workload is not in reach", `
  nodeVM:
    when: |
      class.data == 'regulated' ||
        workload.spec.traits.privileged`,
			[]string{`p.yaml:9:9: spec.nodeVM.when: undeclared reference to 'workload'`}},
		{"not a bool", `
  nodeVM: {when: "class.name"}`,
			[]string{`p.yaml:6:19: spec.nodeVM.when: the expression gives a value of type string, not bool (write a condition over class`}},
		{"detail not a string", `
  nodeVM: {when: "true", detail: "size(class.name)"}`,
			[]string{`p.yaml:6:35: spec.nodeVM.detail: the expression gives a value of type int, not string`}},
		{"empty when", `
  nodeVM: {detail: "class.name"}`,
			[]string{`p.yaml:6:11: spec.nodeVM.when: required value (give a CEL expression over class`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, errs := LoadPolicy("p.yaml", []byte(policyHead+" []"+tt.nodeVM+"\n"))
			if e != nil {
				t.Error("an invalid policy gave an engine")
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), errs)
			}
			for i, want := range tt.want {
				if got := errs[i].Error(); !strings.HasPrefix(got, want) {
					t.Errorf("error:\n%s\nwant it to start with:\n%s", got, want)
				}
			}
		})
	}
}
