package compose

import (
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Merge rules of the compose specification for extends, by key path below the service.
var (
	// replaced keys take the extending service's value whole.
	replaced = map[string]bool{"command": true, "entrypoint": true, "healthcheck.test": true}
	// pairKeys hold key: value mappings, or lists of key=value: merged by key.
	pairKeys = map[string]bool{
		"environment": true, "labels": true, "sysctls": true, "annotations": true,
		"deploy.labels": true, "build.args": true, "build.labels": true, "build.extra_hosts": true,
		"extra_hosts": true, "logging.options": true, "storage_opt": true,
	}
	// targetKeys are lists merged by the path an item mounts at.
	targetKeys = map[string]bool{"volumes": true, "devices": true}
	// uniqueKeys are lists whose merge drops duplicates.
	uniqueKeys = map[string]bool{
		"cap_add": true, "cap_drop": true, "configs": true, "expose": true, "external_links": true,
		"ports": true, "secrets": true, "security_opt": true, "device_cgroup_rules": true,
		"deploy.placement.constraints": true, "deploy.placement.preferences": true,
	}
)

// mergeNodes merges the definition over onto base as extends does: mappings key by key (the
// over's keys win), sequences appended (the base's items first), scalars replaced, and the
// specification's exceptions by key path (see the tables above). key is the path of the
// value below the service ("" for the service itself). The result shares the nodes of both;
// the nodes it makes belong to over's file.
func (r *reader) mergeNodes(base, over *yaml.Node, key string, p *field.Path) *yaml.Node {
	rb, ro := r.resolve(base), r.resolve(over)
	switch {
	case ro != nil && ro.Tag == "!reset":
		return r.made(yaml.ScalarNode, "!!null", "", ro) // the base's value is removed
	case ro != nil && ro.Tag == "!override":
		return over
	case rb == nil || isNull(rb):
		return over
	case ro == nil:
		return base
	case replaced[key]:
		return over
	case pairKeys[key]:
		return r.mergePairs(rb, ro, p)
	case rb.Kind == yaml.MappingNode && ro.Kind == yaml.MappingNode:
		return r.mergeMappings(rb, ro, key, p)
	case rb.Kind == yaml.SequenceNode && ro.Kind == yaml.SequenceNode:
		return r.mergeSequences(rb, ro, key)
	}
	return over
}

// made returns a new node of kind k, placed at (and belonging to the file of) node at.
func (r *reader) made(k yaml.Kind, tag, value string, at *yaml.Node) *yaml.Node {
	n := &yaml.Node{Kind: k, Tag: tag, Value: value, Line: at.Line, Column: at.Column}
	r.owner[n] = r.sourceOf(at)
	return n
}

func (r *reader) mergeMappings(base, over *yaml.Node, key string, p *field.Path) *yaml.Node {
	bf, _ := r.mapping(base, p)
	of, _ := r.mapping(over, p)
	for range len(bf) + len(of) {
		if !r.spend(over) {
			return over
		}
	}
	out := r.made(yaml.MappingNode, "!!map", "", over)
	for _, e := range bf {
		if key == "" && e.key == "extends" {
			continue // resolved already
		}
		if v := of.get(e.key); v != nil {
			k := e.k
			for _, oe := range of {
				if oe.key == e.key {
					k = oe.k
				}
			}
			child := e.key
			if key != "" {
				child = key + "." + e.key
			}
			out.Content = append(out.Content, k, r.mergeNodes(e.v, v, child, p.Child(e.key)))
			continue
		}
		out.Content = append(out.Content, e.k, e.v)
	}
	for _, e := range of {
		if (key == "" && e.key == "extends") || bf.get(e.key) != nil {
			continue
		}
		out.Content = append(out.Content, e.k, e.v)
	}
	return out
}

func (r *reader) mergeSequences(base, over *yaml.Node, key string) *yaml.Node {
	// The merged items count against the document's budget, as long extends chains copy them.
	for range len(base.Content) + len(over.Content) {
		if !r.spend(over) {
			return over
		}
	}
	out := r.made(yaml.SequenceNode, "!!seq", "", over)
	switch {
	case targetKeys[key]:
		replacedAt := map[string]bool{}
		for _, item := range over.Content {
			if t := r.mountTarget(item); t != "" {
				replacedAt[t] = true
			}
		}
		for _, item := range base.Content {
			if t := r.mountTarget(item); t == "" || !replacedAt[t] {
				out.Content = append(out.Content, item)
			}
		}
		out.Content = append(out.Content, over.Content...)
	case uniqueKeys[key]:
		seen := map[string]bool{}
		for _, item := range append(append([]*yaml.Node{}, base.Content...), over.Content...) {
			if s := r.resolve(item); s != nil && s.Kind == yaml.ScalarNode {
				if seen[s.Value] {
					continue
				}
				seen[s.Value] = true
			}
			out.Content = append(out.Content, item)
		}
	default:
		out.Content = append(append(out.Content, base.Content...), over.Content...)
	}
	return out
}

// mountTarget is the path a volume or device item mounts at, as written: the second part of
// SOURCE:TARGET[:MODE] (the only part of an anonymous volume), or target: of the long syntax.
func (r *reader) mountTarget(item *yaml.Node) string {
	n := r.resolve(item)
	switch {
	case n == nil:
		return ""
	case n.Kind == yaml.ScalarNode:
		parts := strings.Split(n.Value, ":")
		if len(parts) > 2 && len(parts[0]) == 1 && isLetter(parts[0][0]) {
			parts = parts[1:] // C:\data:/data
		}
		if len(parts) == 1 {
			return parts[0]
		}
		return parts[1]
	case n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "target" && n.Content[i+1].Kind == yaml.ScalarNode {
				return n.Content[i+1].Value
			}
		}
	}
	return ""
}

// mergePairs merges environment-like values (a mapping, or a list of key=value) by key, the
// over's keys winning. Two lists stay a list; otherwise the result is a mapping, list items
// becoming keys and values placed at the item.
func (r *reader) mergePairs(base, over *yaml.Node, p *field.Path) *yaml.Node {
	for range len(base.Content) + len(over.Content) {
		if !r.spend(over) {
			return over
		}
	}
	if base.Kind == yaml.SequenceNode && over.Kind == yaml.SequenceNode {
		overridden := map[string]bool{}
		for _, item := range over.Content {
			if s := r.resolve(item); s != nil && s.Kind == yaml.ScalarNode {
				k, _, _ := strings.Cut(s.Value, "=")
				overridden[k] = true
			}
		}
		out := r.made(yaml.SequenceNode, "!!seq", "", over)
		for _, item := range base.Content {
			if s := r.resolve(item); s != nil && s.Kind == yaml.ScalarNode {
				if k, _, _ := strings.Cut(s.Value, "="); overridden[k] {
					continue
				}
			}
			out.Content = append(out.Content, item)
		}
		out.Content = append(out.Content, over.Content...)
		return out
	}
	bk, bv := r.pairNodes(base, p)
	ok, ov := r.pairNodes(over, p)
	if bk == nil || ok == nil {
		return over // a shape error, reported when the value is read
	}
	out := r.made(yaml.MappingNode, "!!map", "", over)
	overridden := map[string]bool{}
	for _, k := range ok {
		overridden[k.Value] = true
	}
	for i, k := range bk {
		if !overridden[k.Value] {
			out.Content = append(out.Content, k, bv[i])
		}
	}
	for i, k := range ok {
		out.Content = append(out.Content, k, ov[i])
	}
	return out
}

// pairNodes returns the keys and values of a mapping, or of a list of key=value items (made
// into nodes at the item). nil keys mean n has another shape.
func (r *reader) pairNodes(n *yaml.Node, p *field.Path) (keys, values []*yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		fs, _ := r.mapping(n, p)
		keys, values = []*yaml.Node{}, []*yaml.Node{}
		for _, e := range fs {
			keys, values = append(keys, e.k), append(values, e.v)
		}
	case yaml.SequenceNode:
		keys, values = []*yaml.Node{}, []*yaml.Node{}
		for _, item := range n.Content {
			s := r.resolve(item)
			if s == nil || s.Kind != yaml.ScalarNode {
				continue
			}
			k, v, hasValue := strings.Cut(s.Value, "=")
			keys = append(keys, r.made(yaml.ScalarNode, "!!str", k, s))
			if hasValue {
				values = append(values, r.made(yaml.ScalarNode, "!!str", v, s))
			} else {
				values = append(values, r.made(yaml.ScalarNode, "!!null", "", s))
			}
		}
	}
	return keys, values
}
