package kube

import (
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/inventory"
	"strata.dev/strata/internal/load"
)

// importString splits src into documents and imports them, failing the test on a syntax error.
func importString(t testing.TB, file, src string) (inventory.Set, diag.List) {
	t.Helper()
	docs, errs := load.Documents(file, []byte(src))
	if len(errs) > 0 {
		t.Fatalf("load.Documents: %v", errs)
	}
	return Import(docs)
}

// importOne imports src, which must hold exactly one workload and no errors.
func importOne(t *testing.T, src string) *v1alpha1.Workload {
	t.Helper()
	set, errs := importString(t, "test.yaml", src)
	if len(errs) > 0 {
		t.Fatalf("unexpected errors:\n%v", errs)
	}
	if len(set.Items) != 1 {
		t.Fatalf("got %d workloads, want 1", len(set.Items))
	}
	return &set.Items[0].Workload
}

// indent indents every line of s by n spaces.
func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// deployment wraps a pod spec in a Deployment named web.
func deployment(podSpec string) string {
	return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n" + indent(6, podSpec)
}

// pod wraps a pod spec in a Pod named web.
func pod(podSpec string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n" + indent(2, podSpec)
}

// container is a pod spec with one container of image app:1 and extra container fields.
func container(fields string) string {
	s := "containers:\n- name: app\n  image: app:1\n"
	if fields != "" {
		s += indent(2, fields)
	}
	return s
}

func loadDocs(t testing.TB, src string) ([]load.Document, diag.List) {
	t.Helper()
	return load.Documents("test.yaml", []byte(src))
}
