package compose

import (
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/inventory"
	"strata.dev/strata/internal/load"
)

const testFile = "compose.yaml"

// importYAML imports the first document of a compose file given as text.
func importYAML(t *testing.T, text string) (inventory.Set, diag.List) {
	t.Helper()
	docs, errs := load.Documents(testFile, []byte(text))
	if len(errs) > 0 || len(docs) != 1 {
		t.Fatalf("load.Documents: %d documents, errors %v", len(docs), errs)
	}
	return Import(docs[0], Options{})
}

// service imports a compose file with one service, whose body is given indented by four
// spaces under "services:\n  svc:\n", and returns its workload. It fails on any error.
func service(t *testing.T, body string) v1alpha1.Workload {
	t.Helper()
	set, errs := importYAML(t, "services:\n  svc:\n"+indent(body, "    "))
	if len(errs) > 0 {
		t.Fatalf("unexpected errors:\n%v", errs)
	}
	if len(set.Items) != 1 {
		t.Fatalf("got %d items, want 1", len(set.Items))
	}
	return set.Items[0].Workload
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// defaultTraits returns the traits of a defaulted workload, changed by edit.
func defaultTraits(edit func(*v1alpha1.Traits)) v1alpha1.Traits {
	w := v1alpha1.Workload{}
	w.SetDefaults()
	if edit != nil {
		edit(&w.Spec.Traits)
	}
	return w.Spec.Traits
}
