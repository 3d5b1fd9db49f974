package assess

import (
	"bytes"
	"encoding/json"

	"strata.dev/strata/api/v1alpha1"
)

// input turns a workload into the map rules see: the document as JSON would decode it, with
// numbers as int64 where they are whole, and every trait present even when empty (each
// hostPaths item with its readOnly and inProject), so rules need no has() for them.
func input(w *v1alpha1.Workload) map[string]any {
	b, err := json.Marshal(w)
	if err != nil {
		panic("assess: a workload does not encode as JSON: " + err.Error()) // impossible for these types
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		panic("assess: a workload does not decode from JSON: " + err.Error())
	}
	numbers(m)
	meta := child(m, "metadata")
	child(meta, "labels")
	child(meta, "annotations")
	spec := child(m, "spec")
	traits := child(spec, "traits")
	for _, k := range []string{"os", "osVersion", "trust", "data", "tenancy"} {
		if _, ok := traits[k]; !ok {
			traits[k] = ""
		}
	}
	if _, ok := traits["privileged"]; !ok {
		traits["privileged"] = false
	}
	if _, ok := traits["imageAvailable"]; !ok {
		traits["imageAvailable"] = true
	}
	list(traits, "capabilities")
	list(traits, "hostAccess")
	list(traits, "hostPaths")
	for _, h := range traits["hostPaths"].([]any) {
		if hm, ok := h.(map[string]any); ok {
			for _, k := range []string{"readOnly", "inProject"} {
				if _, ok := hm[k]; !ok {
					hm[k] = false
				}
			}
		}
	}
	list(traits, "unconfined")
	kernel := child(traits, "kernel")
	list(kernel, "modules")
	list(kernel, "sysctls")
	return m
}

func child(m map[string]any, key string) map[string]any {
	if c, ok := m[key].(map[string]any); ok {
		return c
	}
	c := map[string]any{}
	m[key] = c
	return c
}

func list(m map[string]any, key string) {
	if _, ok := m[key].([]any); !ok {
		m[key] = []any{}
	}
}

// numbers replaces json.Number values with int64 or float64, in place.
func numbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			x[k] = numbers(c)
		}
	case []any:
		for i, c := range x {
			x[i] = numbers(c)
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}
