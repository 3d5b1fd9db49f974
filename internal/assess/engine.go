package assess

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"strata.dev/strata/api/v1alpha1"
)

//go:embed default-policy.yaml
var defaultPolicy []byte

// DefaultPolicy returns the text of the built-in policy, an AssessmentPolicy document.
func DefaultPolicy() []byte { return defaultPolicy }

// costLimit bounds the work one rule may do on one workload, so that no policy can hang assessment.
const costLimit = 1_000_000

// Engine evaluates a compiled policy.
type Engine struct {
	name   string
	rules  []rule
	nodeVM *nodeVMRule // the policy's spec.nodeVM, or the built-in one
}

type rule struct {
	v1alpha1.Rule
	prg    cel.Program
	detail cel.Program // nil when the rule has no detail
}

// ExprError is a problem in one rule's expression. Line and Col are positions within the
// expression text, from 1; zero when the problem is not at a place in it.
type ExprError struct {
	Rule      int    // index in spec.rules; -1 for spec.nodeVM
	Field     string // "when" or "detail"
	Line, Col int
	Msg, Hint string
}

func (e ExprError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Path(), e.Line, e.Col, e.Msg)
}

// Path is the field path of the expression: spec.rules[i].when, spec.rules[i].detail,
// spec.nodeVM.when or spec.nodeVM.detail.
func (e ExprError) Path() string {
	if e.Rule < 0 {
		return "spec.nodeVM." + e.field()
	}
	return fmt.Sprintf("spec.rules[%d].%s", e.Rule, e.field())
}

func (e ExprError) field() string {
	if e.Field == "" {
		return "when"
	}
	return e.Field
}

// Compile checks and compiles every rule of a validated policy, returning all problems.
func Compile(pol *v1alpha1.AssessmentPolicy) (*Engine, []ExprError) {
	env, err := newEnv()
	if err != nil {
		panic(fmt.Sprintf("assess: the CEL environment does not build: %v", err)) // a programming error
	}
	e := &Engine{name: pol.Metadata.Name}
	var errs []ExprError
	probe := input(probeWorkload())
	for i, r := range pol.Spec.Rules {
		ast, iss := env.Compile(r.When)
		if iss.Err() != nil {
			for _, ce := range iss.Errors() {
				errs = append(errs, ExprError{Rule: i, Line: ce.Location.Line(), Col: ce.Location.Column() + 1,
					Msg: ce.Message, Hint: "see the CEL language definition; rules read workload.spec.traits.*"})
			}
			continue
		}
		if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
			errs = append(errs, ExprError{Rule: i, Line: 1, Col: 1,
				Msg: "the expression gives a value of type " + t.String() + ", not bool", Hint: "write a condition, such as workload.spec.traits.privileged"})
			continue
		}
		prg, err := env.Program(ast, cel.CostLimit(costLimit))
		if err != nil {
			errs = append(errs, ExprError{Rule: i, Msg: err.Error()})
			continue
		}
		// A rule that cannot be evaluated on a workload with every default set is wrong for
		// every workload: find out now, not in the middle of a report.
		if _, err := eval(prg, probe); err != nil {
			errs = append(errs, ExprError{Rule: i, Msg: "does not evaluate on a workload with defaults: " + err.Error(),
				Hint: "check the field path (fields are as in a Workload document); guard optional fields with has()"})
			continue
		}
		compiled := rule{Rule: r, prg: prg}
		if r.Detail != "" {
			var derr *ExprError
			if compiled.detail, derr = compileDetail(env, r.Detail, probe); derr != nil {
				derr.Rule, derr.Field = i, "detail"
				errs = append(errs, *derr)
				continue
			}
		}
		e.rules = append(e.rules, compiled)
	}
	if pol.Spec.NodeVM != nil {
		nv, nerrs := compileNodeVM(pol.Spec.NodeVM)
		errs = append(errs, nerrs...)
		e.nodeVM = nv
	} else {
		e.nodeVM = Default().nodeVM
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return e, nil
}

// probeWorkload is a minimal valid workload with every default applied.
func probeWorkload() *v1alpha1.Workload {
	w := &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: "probe"}}
	w.SetDefaults()
	return w
}

func eval(prg cel.Program, in map[string]any) (bool, error) {
	out, _, err := prg.Eval(map[string]any{"workload": in})
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("the expression gave %v (%s), not a bool", out.Value(), out.Type())
	}
	return b, nil
}

// compileDetail compiles a rule's detail expression, which must give a string.
func compileDetail(env *cel.Env, expr string, probe map[string]any) (cel.Program, *ExprError) {
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		ce := iss.Errors()[0]
		return nil, &ExprError{Line: ce.Location.Line(), Col: ce.Location.Column() + 1, Msg: ce.Message,
			Hint: "see the CEL language definition; a detail is a string expression"}
	}
	if t := ast.OutputType(); !t.IsExactType(types.StringType) && !t.IsExactType(types.DynType) {
		return nil, &ExprError{Line: 1, Col: 1, Msg: "the detail gives a value of type " + t.String() + ", not string",
			Hint: "write a string expression, such as workload.spec.traits.osVersion"}
	}
	prg, err := env.Program(ast, cel.CostLimit(costLimit))
	if err != nil {
		return nil, &ExprError{Msg: err.Error()}
	}
	if _, err := evalString(prg, probe); err != nil {
		return nil, &ExprError{Msg: "does not evaluate on a workload with defaults: " + err.Error(),
			Hint: "check the field path; guard optional fields with has()"}
	}
	return prg, nil
}

func evalString(prg cel.Program, in map[string]any) (string, error) {
	out, _, err := prg.Eval(map[string]any{"workload": in})
	if err != nil {
		return "", err
	}
	s, ok := out.Value().(string)
	if !ok {
		return "", fmt.Errorf("the detail gave %v (%s), not a string", out.Value(), out.Type())
	}
	return s, nil
}

// Decision is the tier decided for one workload and why.
type Decision struct {
	Tier       v1alpha1.Tier
	Requested  v1alpha1.Isolation
	Reasons    []v1alpha1.Reason
	Violations []v1alpha1.Violation
	// NodeVM is where the replicas of the decided tier run (see Engine.NodeVM).
	NodeVM v1alpha1.NodeVMDecision
}

// Assess decides the tier of a defaulted workload. An error means a rule could not be
// evaluated on it; it names the rule.
func (e *Engine) Assess(w *v1alpha1.Workload) (Decision, error) {
	in := input(w)
	d := Decision{Tier: v1alpha1.TierContainer, Requested: w.Spec.Isolation, Reasons: []v1alpha1.Reason{}, Violations: []v1alpha1.Violation{}}
	if d.Requested == "" {
		d.Requested = v1alpha1.IsolationAuto
	}
	var matched []rule
	messages := map[string]string{} // rule name -> message with its detail
	for _, r := range e.rules {
		ok, err := eval(r.prg, in)
		if err != nil {
			return Decision{}, fmt.Errorf("policy %s, rule %s: %w", e.name, r.Name, err)
		}
		if !ok {
			continue
		}
		matched = append(matched, r)
		msg := r.Message
		if r.detail != nil {
			detail, err := evalString(r.detail, in)
			if err != nil {
				return Decision{}, fmt.Errorf("policy %s, rule %s, detail: %w", e.name, r.Name, err)
			}
			if detail != "" {
				msg += " (" + detail + ")"
			}
		}
		messages[r.Name] = msg
		d.Reasons = append(d.Reasons, v1alpha1.Reason{Rule: r.Name, Effect: r.Effect, Tier: r.Tier, Message: msg})
		if d.Tier.Weaker(r.Tier) {
			d.Tier = r.Tier
		}
	}
	if t, explicit := d.Requested.Tier(); explicit {
		d.Tier = t
	}
	for _, r := range matched {
		switch {
		case d.Tier.Weaker(r.Tier):
			d.Violations = append(d.Violations, v1alpha1.Violation{Rule: r.Name, Tier: r.Tier,
				Message: fmt.Sprintf("isolation %s is weaker than %s, which rule %s sets as the floor: %s", d.Tier, r.Tier, r.Name, messages[r.Name])})
		case r.Effect == v1alpha1.EffectRequire && r.Tier != d.Tier:
			by := "spec.isolation"
			if d.Requested == v1alpha1.IsolationAuto {
				by = "a stronger floor (" + strongest(matched, d.Tier) + ")"
			}
			d.Violations = append(d.Violations, v1alpha1.Violation{Rule: r.Name, Tier: r.Tier,
				Message: fmt.Sprintf("rule %s requires exactly %s, but %s makes it %s", r.Name, r.Tier, by, d.Tier)})
		}
	}
	nv, err := e.NodeVM(w, d.Tier)
	if err != nil {
		return Decision{}, err
	}
	d.NodeVM = nv
	return d, nil
}

// strongest names the matched rules whose tier is t.
func strongest(matched []rule, t v1alpha1.Tier) string {
	var names []string
	for _, r := range matched {
		if r.Tier == t {
			names = append(names, r.Name)
		}
	}
	return strings.Join(names, ", ")
}

// Rules returns the names of the engine's rules, in order.
func (e *Engine) Rules() []string {
	names := make([]string, len(e.rules))
	for i, r := range e.rules {
		names[i] = r.Name
	}
	return names
}
