package assess

import (
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"

	"strata.dev/strata/api/v1alpha1"
)

// A node VM is a VM strata owns that carries the container and sandbox replicas of one
// isolation class. Whether a replica runs inside one or on the host's kernel is decided per
// class by the policy's spec.nodeVM, a CEL condition over `class`, and per workload by
// placement.nodeVM; NodeVM below is that decision, a pure function like Assess.

// nodeVMRule is a compiled spec.nodeVM.
type nodeVMRule struct {
	when   cel.Program
	detail cel.Program // nil when the policy gives no detail
}

// classInput is what spec.nodeVM reads: the replica's isolation class as a map. name is the
// class node VMs are shared by (v1alpha1.Workload.IsolationClass: placement.isolationClass,
// or <tenant>/<trust>/<data>); tenant, trust, data and tenancy are the workload's own, also
// when placement.isolationClass names the class.
func classInput(w *v1alpha1.Workload) map[string]any {
	return map[string]any{
		"name":    w.IsolationClass(),
		"tenant":  w.Tenant(),
		"trust":   string(w.Spec.Traits.Trust),
		"data":    string(w.Spec.Traits.Data),
		"tenancy": string(w.Spec.Traits.Tenancy),
	}
}

// newClassEnv declares what spec.nodeVM can use: the variable `class` (a map of strings), the
// string extensions and cel.bind.
func newClassEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("class", cel.MapType(cel.StringType, cel.StringType)),
		ext.Strings(),
		ext.Bindings(),
	)
}

// compileNodeVM compiles spec.nodeVM; errors carry positions within the expression and the
// field ("when" or "detail"), with Rule set to -1.
func compileNodeVM(nv *v1alpha1.NodeVMRule) (*nodeVMRule, []ExprError) {
	env, err := newClassEnv()
	if err != nil {
		panic(fmt.Sprintf("assess: the CEL environment of spec.nodeVM does not build: %v", err)) // a programming error
	}
	probe := classInput(probeWorkload())
	compiled := &nodeVMRule{}
	var errs []ExprError
	for _, f := range []struct {
		field, expr string
		want        *types.Type
		hint        string
		prg         *cel.Program
	}{
		{"when", nv.When, types.BoolType, "write a condition over class, such as class.tenancy == 'multi'", &compiled.when},
		{"detail", nv.Detail, types.StringType, "write a string expression over class, such as 'data ' + class.data", &compiled.detail},
	} {
		if f.expr == "" {
			continue
		}
		ast, iss := env.Compile(f.expr)
		if iss.Err() != nil {
			for _, ce := range iss.Errors() {
				errs = append(errs, ExprError{Rule: -1, Field: f.field, Line: ce.Location.Line(), Col: ce.Location.Column() + 1,
					Msg: ce.Message, Hint: "see the CEL language definition; spec.nodeVM reads class.name, class.tenant, class.trust, class.data and class.tenancy"})
			}
			continue
		}
		if t := ast.OutputType(); !t.IsExactType(f.want) && !t.IsExactType(types.DynType) {
			errs = append(errs, ExprError{Rule: -1, Field: f.field, Line: 1, Col: 1,
				Msg: "the expression gives a value of type " + t.String() + ", not " + f.want.String(), Hint: f.hint})
			continue
		}
		prg, err := env.Program(ast, cel.CostLimit(costLimit))
		if err != nil {
			errs = append(errs, ExprError{Rule: -1, Field: f.field, Msg: err.Error()})
			continue
		}
		if _, err := evalClass(prg, probe); err != nil {
			errs = append(errs, ExprError{Rule: -1, Field: f.field, Msg: "does not evaluate on the class of a workload with defaults: " + err.Error(),
				Hint: "class has the keys name, tenant, trust, data and tenancy"})
			continue
		}
		*f.prg = prg
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return compiled, nil
}

// evalClass evaluates a spec.nodeVM expression; the caller knows from its compiled type
// whether the value is a bool or a string.
func evalClass(prg cel.Program, class map[string]any) (any, error) {
	out, _, err := prg.Eval(map[string]any{"class": class})
	if err != nil {
		return nil, err
	}
	switch v := out.Value().(type) {
	case bool, string:
		return v, nil
	}
	return nil, fmt.Errorf("the expression gave %v (%s), not a bool or a string", out.Value(), out.Type())
}

// NodeVM decides where the replicas of a defaulted workload of the given tier run. The vm tier
// is its own VM: Run is false and Class empty. For the container and sandbox tiers,
// placement.nodeVM decides when set; otherwise the policy's spec.nodeVM over the workload's
// class. placement.nodeVM never on a class the policy sends into node VMs is honoured with a
// Warning: keeping a class on the host's kernel is the workload owner's call, and the report
// makes it visible, but it is not a violation (apply does not refuse it).
func (e *Engine) NodeVM(w *v1alpha1.Workload, tier v1alpha1.Tier) (v1alpha1.NodeVMDecision, error) {
	mode := w.Spec.Placement.NodeVM
	if tier == v1alpha1.TierVM {
		d := v1alpha1.NodeVMDecision{Reason: "tier vm: each replica is a VM of its own"}
		if mode == v1alpha1.NodeVMRequired {
			d.Warning = "placement.nodeVM required has no effect on the vm tier: its replicas are VMs of their own, not replicas inside node VMs"
		}
		return d, nil
	}
	class := classInput(w)
	d := v1alpha1.NodeVMDecision{Class: class["name"].(string)}
	run, why, err := e.policyNodeVM(class)
	if err != nil {
		return v1alpha1.NodeVMDecision{}, err
	}
	switch mode {
	case v1alpha1.NodeVMRequired:
		d.Run, d.Reason = true, "placement.nodeVM required"
	case v1alpha1.NodeVMNever:
		d.Run, d.Reason = false, "placement.nodeVM never"
		if run {
			d.Warning = "placement.nodeVM never keeps class " + d.Class + " on the host's kernel, but the policy sends it into node VMs (" + why +
				"); remove placement.nodeVM to follow the policy"
		}
	default:
		d.Run, d.Reason = run, why
	}
	return d, nil
}

// policyNodeVM evaluates the policy's spec.nodeVM on a class: whether it runs in node VMs, and
// the reason, "policy: <detail>".
func (e *Engine) policyNodeVM(class map[string]any) (bool, string, error) {
	nv := e.nodeVM
	v, err := evalClass(nv.when, class)
	if err != nil {
		return false, "", fmt.Errorf("policy %s, spec.nodeVM.when: %w", e.name, err)
	}
	run, ok := v.(bool)
	if !ok {
		return false, "", fmt.Errorf("policy %s, spec.nodeVM.when: the expression gave %q, not a bool", e.name, v)
	}
	detail := ""
	if nv.detail != nil {
		v, err := evalClass(nv.detail, class)
		if err != nil {
			return false, "", fmt.Errorf("policy %s, spec.nodeVM.detail: %w", e.name, err)
		}
		s, ok := v.(string)
		if !ok {
			return false, "", fmt.Errorf("policy %s, spec.nodeVM.detail: the expression gave %v, not a string", e.name, v)
		}
		detail = s
	}
	if detail == "" {
		detail = fmt.Sprintf("spec.nodeVM.when is %t for class %s", run, class["name"])
	}
	return run, "policy: " + detail, nil
}
