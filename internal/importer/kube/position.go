package kube

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/load"
)

// path is a way into an object: each step is a field name (string), a list index (int)
// or a map key (key). It prints as spec.template.metadata.annotations[strata.dev/trust].
type path []any

// key is a step into a map whose keys are data, not field names (labels, annotations).
type key string

// to returns p extended by steps, sharing nothing with p.
func (p path) to(steps ...any) path {
	out := make(path, 0, len(p)+len(steps))
	return append(append(out, p...), steps...)
}

func (p path) String() string {
	var b strings.Builder
	for _, s := range p {
		switch s := s.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s)
		case int:
			b.WriteString("[" + strconv.Itoa(s) + "]")
		case key:
			b.WriteString("[" + string(s) + "]")
		}
	}
	return b.String()
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// locate returns the node at p under n, or the deepest node on the way that exists.
func locate(n *yaml.Node, p path) *yaml.Node {
	n = resolve(n)
	for _, s := range p {
		var next *yaml.Node
		switch s := s.(type) {
		case string:
			next = load.Field(n, s)
		case key:
			next = load.Field(n, string(s))
		case int:
			if n.Kind == yaml.SequenceNode && s >= 0 && s < len(n.Content) {
				next = n.Content[s]
			}
		}
		next = resolve(next)
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

// scalarAt returns the scalar value at p under n, or "".
func scalarAt(n *yaml.Node, p path) string {
	for _, s := range p {
		next := resolve(load.Field(n, fmt.Sprint(s)))
		if next == nil {
			return ""
		}
		n = next
	}
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// object is one Kubernetes object: a whole document, or one item of a List document.
type object struct {
	doc load.Document // Node, Line, Col, APIVersion and Kind are the object's own
	at  path          // where the object is in its document: empty, or items[i]
}

// errorf reports a problem at p inside the object, placed at p's position in the file
// (or its nearest ancestor's).
func (o *object) errorf(p path, hint, format string, args ...any) *diag.Error {
	e := &diag.Error{File: o.doc.File, Line: o.doc.Line, Col: o.doc.Col,
		Path: o.at.to(p...).String(), Msg: fmt.Sprintf(format, args...), Hint: hint}
	if n := locate(o.doc.Node, p); n != nil && n.Line > 0 {
		e.Line, e.Col = n.Line, n.Column
	}
	if e.Line < 1 {
		e.Line = 1
	}
	return e
}
