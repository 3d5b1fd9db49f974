package assess

import (
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

// FuzzLoadPolicy: no policy file, however broken, crashes loading or assessing; it gives an
// engine or errors, every error placed on a line of the file.
func FuzzLoadPolicy(f *testing.F) {
	f.Add(DefaultPolicy())
	f.Add([]byte(policyHead + " []\n  nodeVM:\n    when: |\n      class.data == 'regulated' ||\n        class.tenant.startsWith('x')\n    detail: class.name\n"))
	f.Add([]byte(policyHead + " []\n  nodeVM:\n    when: >-\n      class.tenancy == 'multi' ||\n      class.tenant.startWith('a')\n"))
	f.Add([]byte(policyHead + "\n  - {name: a, when: \"workload.spec.traits.os ==\", effect: atLeast, tier: vm, message: m}\n  nodeVM: {when: \"class.name\"}\n"))
	w := workload(func(s *v1alpha1.WorkloadSpec) { s.Traits.Tenancy = "multi" })
	f.Fuzz(func(t *testing.T, data []byte) {
		e, errs := LoadPolicy("p.yaml", data)
		if (e == nil) == (len(errs) == 0) {
			t.Fatalf("engine %v with %d errors: want exactly one of them", e != nil, len(errs))
		}
		for _, err := range errs {
			if err.Line < 1 {
				t.Errorf("error without a place: %v", err)
			}
		}
		if e != nil {
			_, _ = e.Assess(w) // may fail on a rule's data, never crash
		}
	})
}
