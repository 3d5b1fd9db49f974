package kube

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/golden"
)

// TestGolden imports every testdata/*.yaml and compares the inventory, as indented JSON,
// with testdata/<name>.golden.json.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.yaml")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			set, errs := importString(t, filepath.ToSlash(file), string(data))
			if len(errs) > 0 {
				t.Fatalf("unexpected errors:\n%v", errs)
			}
			for _, it := range set.Items {
				if ferrs := v1alpha1.ValidateWorkload(&it.Workload); len(ferrs) > 0 {
					t.Errorf("%s: %v", it.Workload.Metadata.Name, ferrs.ToAggregate())
				}
			}
			golden.JSON(t, strings.TrimSuffix(file, ".yaml")+".golden.json", set)
		})
	}
}

// TestShopCoverage checks that the realistic set exercises what it is meant to.
func TestShopCoverage(t *testing.T) {
	data, err := os.ReadFile("testdata/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, errs := importString(t, "shop.yaml", string(data))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	kinds := map[string]int{}
	byName := map[string]*v1alpha1.Workload{}
	for i, it := range set.Items {
		kinds[it.Source.Kind]++
		byName[it.Workload.Metadata.Name] = &set.Items[i].Workload
	}
	if len(set.Items) < 10 || len(kinds) != 7 {
		t.Errorf("%d workloads of kinds %v; want at least 10 of all seven kinds", len(set.Items), kinds)
	}
	skipped := map[string]bool{}
	for _, s := range set.Skipped {
		skipped[s.Source.Kind] = true
	}
	if !skipped["Service"] || !skipped["ConfigMap"] {
		t.Errorf("skipped kinds %v; want Service and ConfigMap", skipped)
	}
	checks := []struct {
		name string
		ok   func(w *v1alpha1.Workload) bool
	}{
		{"node-exporter", func(w *v1alpha1.Workload) bool {
			return w.Spec.Traits.Privileged && len(w.Spec.Traits.HostAccess) == 2 &&
				reflect.DeepEqual(w.Spec.Traits.HostPaths, []v1alpha1.HostPath{{Path: "/", ReadOnly: true}})
		}},
		{"legacy-reports", func(w *v1alpha1.Workload) bool { return w.Spec.Traits.OS == v1alpha1.OSWindows }},
		{"orders-db", func(w *v1alpha1.Workload) bool {
			return len(w.Spec.Volumes) == 1 && w.Spec.Volumes[0].Size != nil &&
				w.Spec.Traits.Data == v1alpha1.DataRegulated && w.Spec.Traits.Tenancy == v1alpha1.TenancyMulti
		}},
		{"preview", func(w *v1alpha1.Workload) bool { return w.Spec.Isolation == v1alpha1.Isolation(v1alpha1.TierSandbox) }},
		{"netdebug", func(w *v1alpha1.Workload) bool {
			return len(w.Spec.Traits.Capabilities) > 0 && w.Spec.Traits.Capabilities[0] == "NET_ADMIN"
		}},
		{"nightly-report", func(w *v1alpha1.Workload) bool { return w.Spec.RestartPolicy == v1alpha1.RestartNever }},
		{"web-2", func(w *v1alpha1.Workload) bool { return w.Spec.Image == "registry.example/shop/web:2.2" }}, // from the List
	}
	for _, c := range checks {
		if w := byName[c.name]; w == nil || !c.ok(w) {
			t.Errorf("%s: missing or not as the set intends: %+v", c.name, w)
		}
	}
}
