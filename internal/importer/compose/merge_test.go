package compose

import (
	"reflect"
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

func TestMergeKeys(t *testing.T) {
	set, errs := importYAML(t, `
x-base: &base
  image: base:1
  restart: "no"
  environment: &env {A: base, B: base}
x-more: &more
  image: more:1
  privileged: true
  environment: {A: more, C: more}
x-nested: &nested
  <<: *base
  cap_add: [NET_RAW]
services:
  own-keys-win:
    <<: *base
    image: own:1
  earlier-merge-wins:
    <<: [*more, *base]
  nested:
    <<: *nested
    environment:
      <<: *env
      B: own
  alias: *base
`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	type got struct {
		image      string
		restart    v1alpha1.RestartPolicy
		privileged bool
		caps       []string
		env        map[string]string
	}
	want := map[string]got{
		"own-keys-win":       {"own:1", v1alpha1.RestartNever, false, nil, map[string]string{"A": "base", "B": "base"}},
		"earlier-merge-wins": {"more:1", v1alpha1.RestartNever, true, nil, map[string]string{"A": "more", "C": "more"}},
		"nested":             {"base:1", v1alpha1.RestartNever, false, []string{"NET_RAW"}, map[string]string{"A": "base", "B": "own"}},
		"alias":              {"base:1", v1alpha1.RestartNever, false, nil, map[string]string{"A": "base", "B": "base"}},
	}
	if len(set.Items) != len(want) {
		t.Fatalf("got %d items, want %d", len(set.Items), len(want))
	}
	for _, it := range set.Items {
		w := it.Workload
		g := got{w.Spec.Image, w.Spec.RestartPolicy, w.Spec.Traits.Privileged, w.Spec.Traits.Capabilities, w.Spec.Env}
		if !reflect.DeepEqual(g, want[w.Metadata.Name]) {
			t.Errorf("%s: got %+v, want %+v", w.Metadata.Name, g, want[w.Metadata.Name])
		}
	}
}

func TestMergeCycles(t *testing.T) {
	// An anchor may contain an alias of itself; reading it must end.
	set, errs := importYAML(t, `
services:
  loop: &loop
    image: loop:1
    <<: *loop
    environment: &env
      <<: [*env, *env]
      A: a
`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(set.Items) != 1 || set.Items[0].Workload.Spec.Env["A"] != "a" {
		t.Errorf("got %+v", set.Items)
	}
}

func TestDuplicateKeys(t *testing.T) {
	_, errs := importYAML(t, "services:\n  web:\n    image: a\n    image: b\n")
	if len(errs) != 1 || errs[0].Error() != `compose.yaml:4:5: services.web.image: key "image" is given twice (keep one of them)` {
		t.Errorf("errors: %v", errs)
	}
}
