package render

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"
)

// YAML encodes objects as a stream of YAML documents, "---" between them, in order.
func YAML(objs []Object) ([]byte, error) {
	var b bytes.Buffer
	for i, o := range objs {
		m, err := plain(o)
		if err != nil {
			return nil, err
		}
		y, err := yaml.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s as YAML: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// JSON encodes objects as one indented JSON document: a v1 List whose items are the objects,
// in order, with a final newline.
func JSON(objs []Object) ([]byte, error) {
	items := make([]map[string]any, 0, len(objs))
	for _, o := range objs {
		m, err := plain(o)
		if err != nil {
			return nil, err
		}
		items = append(items, m)
	}
	list := struct {
		APIVersion string           `json:"apiVersion"`
		Kind       string           `json:"kind"`
		Metadata   map[string]any   `json:"metadata"`
		Items      []map[string]any `json:"items"`
	}{"v1", "List", map[string]any{}, items}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the list: %w", err)
	}
	return append(b, '\n'), nil
}

// plain is o as JSON values, without what a typed object always writes and a rendered one
// never has: its status, a null creationTimestamp, and empty strategies and statuses.
func plain(o Object) (map[string]any, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
	}
	delete(m, "status") // the cluster writes it
	prune(m)
	return m, nil
}

// prune removes, at any depth, creationTimestamp: null, and the empty mappings that typed
// values write for fields a rendered object leaves unset.
func prune(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			prune(x)
			switch k {
			case "creationTimestamp":
				if x == nil {
					delete(v, k)
				}
			case "status", "metadata", "strategy", "updateStrategy":
				if m, ok := x.(map[string]any); ok && len(m) == 0 {
					delete(v, k)
				}
			}
		}
	case []any:
		for _, x := range v {
			prune(x)
		}
	}
}
