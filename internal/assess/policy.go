package assess

import (
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/load"
)

var (
	defaultOnce   sync.Once
	defaultEngine *Engine
)

// Default returns the engine of the built-in policy (default-policy.yaml).
func Default() *Engine {
	defaultOnce.Do(func() {
		e, errs := LoadPolicy("default-policy.yaml", defaultPolicy)
		if len(errs) > 0 {
			panic("assess: the built-in policy is invalid:\n" + errs.Error()) // caught by the package's tests
		}
		defaultEngine = e
	})
	return defaultEngine
}

// LoadPolicy reads a file holding one AssessmentPolicy and compiles it. Every problem is
// reported at its place in the file, CEL errors at their place inside the expression.
func LoadPolicy(file string, data []byte) (*Engine, diag.List) {
	objs, errs := load.File(file, data)
	if len(errs) > 0 {
		return nil, errs
	}
	pol, errs := load.One(file, objs, v1alpha1.KindAssessmentPolicy, "a policy file holds one AssessmentPolicy")
	if len(errs) > 0 {
		return nil, errs
	}
	return CompileObject(pol, data)
}

// CompileObject compiles a decoded AssessmentPolicy; src is the text of its file, used to place
// errors inside multi-line expressions.
func CompileObject(pol *load.Object, src []byte) (*Engine, diag.List) {
	p, ok := pol.Object.(*v1alpha1.AssessmentPolicy)
	if !ok {
		return nil, diag.List{pol.Errorf("kind", "", "a %s is not an AssessmentPolicy", pol.Doc.Kind)}
	}
	var errs diag.List
	e, exprErrs := Compile(p)
	for _, xe := range exprErrs {
		var d *diag.Error
		if xe.Rule < 0 {
			d = pol.Errorf(xe.Path(), xe.Hint, "%s", xe.Msg)
		} else {
			d = pol.Errorf(xe.Path(), xe.Hint, "rule %s: %s", p.Spec.Rules[xe.Rule].Name, xe.Msg)
		}
		if n := exprNode(pol.Doc.Node, xe.Rule, xe.field()); n != nil && xe.Line > 0 {
			d.Line, d.Col = exprPosition(src, n, xe.Line, xe.Col)
		}
		errs = append(errs, d)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return e, nil
}

// exprNode finds the value node of spec.rules[i].<field>, or of spec.nodeVM.<field> when i < 0.
func exprNode(doc *yaml.Node, i int, field string) *yaml.Node {
	if i < 0 {
		return load.Field(load.Field(load.Field(doc, "spec"), "nodeVM"), field)
	}
	rules := load.Field(load.Field(doc, "spec"), "rules")
	if rules == nil || rules.Kind != yaml.SequenceNode || i >= len(rules.Content) {
		return nil
	}
	return load.Field(rules.Content[i], field)
}

// exprPosition maps a position inside an expression (line and column from 1) to its position
// in the file, following how the YAML scalar holding it was written.
func exprPosition(src []byte, n *yaml.Node, line, col int) (int, int) {
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		lines := strings.Split(string(src), "\n")
		// The block's content starts on the line after its indicator.
		first := n.Line // index of the first content line (0-based in lines)
		if n.Style == yaml.LiteralStyle {
			l := first + line - 1
			if l >= len(lines) {
				return n.Line, n.Column
			}
			// Columns count from the block's indentation, which its first line sets; a line
			// indented further keeps its extra spaces in the expression.
			return l + 1, indent(lines[first]) + col
		}
		// Folded: the expression is the block's lines joined by spaces; walk them.
		offset := col - 1
		for l := first; l < len(lines); l++ {
			text := strings.TrimSpace(lines[l])
			if offset <= len(text) {
				return l + 1, indent(lines[l]) + offset + 1
			}
			offset -= len(text) + 1
		}
		return n.Line, n.Column
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if line == 1 {
			return n.Line, n.Column + col // after the opening quote
		}
	default:
		if line == 1 {
			return n.Line, n.Column + col - 1
		}
	}
	return n.Line + line - 1, col
}

func indent(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }
