package render

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/assess"
)

// Documents are the strata documents to render. Render defaults a copy of each; the caller's
// values are not changed.
type Documents struct {
	Workloads []v1alpha1.Workload
	Segments  []v1alpha1.Segment
}

// Options tune the rendering. The zero value is ready to use.
type Options struct {
	// Namespace of every namespaced object. Default DefaultNamespace.
	Namespace string
	// RuntimeClass is the RuntimeClass (and its handler) of sandbox-tier pods.
	// Default DefaultRuntimeClass.
	RuntimeClass string
	// Engine decides each workload's tier. Default assess.Default(), the built-in policy.
	Engine *assess.Engine
}

// Defaults of Options.
const (
	DefaultNamespace    = "default"
	DefaultRuntimeClass = "gvisor"
)

// Object is a rendered Kubernetes object: a typed API value with its TypeMeta set. It is what
// controller-runtime calls a client.Object.
type Object interface {
	metav1.Object
	runtime.Object
}

// Result is what Render makes.
type Result struct {
	// Objects in apply order: RuntimeClass, NetworkPolicy, Service, Deployment and
	// StatefulSet, VirtualMachine, HorizontalPodAutoscaler; by name within a kind.
	Objects []Object
	// Notes for people, in workload order.
	Notes []Note
}

// Note is a message about one workload that the objects cannot carry: something the user
// must provide or know.
type Note struct {
	Workload string
	Message  string
}

func (n Note) String() string { return "workload " + n.Workload + ": " + n.Message }

// Render assesses every workload and renders the documents as Kubernetes objects. The error
// joins one *Error per thing that cannot be rendered; no objects are returned then.
func Render(docs Documents, opts Options) (*Result, error) {
	opts = opts.withDefaults()
	r := &renderer{opts: opts, res: &Result{}, used: map[string]bool{}}
	for _, w := range docs.Workloads {
		if err := deepCopy(&w); err != nil {
			return nil, err
		}
		w.SetDefaults()
		r.used[w.Spec.Segment] = true
		r.workload(&w)
	}
	segs := make([]v1alpha1.Segment, len(docs.Segments))
	for i, s := range docs.Segments {
		if err := deepCopy(&s); err != nil {
			return nil, err
		}
		s.SetDefaults()
		segs[i] = s
	}
	r.segments(segs)
	if len(r.errs) > 0 {
		return nil, errors.Join(r.errs...)
	}
	sortObjects(r.res.Objects)
	return r.res, nil
}

// deepCopy replaces *v with a copy that shares nothing with it, so that defaulting the copy
// leaves the caller's documents alone.
func deepCopy[T any](v *T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("copy %T: %w", v, err)
	}
	var c T
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("copy %T: %w", v, err)
	}
	*v = c
	return nil
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.RuntimeClass == "" {
		o.RuntimeClass = DefaultRuntimeClass
	}
	if o.Engine == nil {
		o.Engine = assess.Default()
	}
	return o
}

// renderer collects objects, notes and errors over one Render call.
type renderer struct {
	opts         Options
	res          *Result
	errs         []error
	runtimeClass bool            // a RuntimeClass object was emitted
	used         map[string]bool // segments that workloads name
}

func (r *renderer) add(objs ...Object) { r.res.Objects = append(r.res.Objects, objs...) }

func (r *renderer) note(w *v1alpha1.Workload, format string, args ...any) {
	r.res.Notes = append(r.res.Notes, Note{Workload: w.Metadata.Name, Message: fmt.Sprintf(format, args...)})
}

func (r *renderer) fail(e *Error) { r.errs = append(r.errs, e) }

// workload decides w's tier and renders it.
func (r *renderer) workload(w *v1alpha1.Workload) {
	name := w.Metadata.Name
	if err := serviceName(name); err != nil {
		r.fail(&Error{Kind: v1alpha1.KindWorkload, Name: name, Field: "metadata.name", Problem: err.Error(),
			Hint: "rename the workload so that it starts with a letter"})
		return
	}
	d, err := r.opts.Engine.Assess(w)
	if err != nil {
		r.fail(&Error{Kind: v1alpha1.KindWorkload, Name: name, Field: "spec", Problem: "assessment failed: " + err.Error(),
			Hint: "fix the policy rule, or guard the fields it reads with has()"})
		return
	}
	for _, v := range d.Violations {
		r.note(w, "rendered at tier %s despite an assessment violation: %s", d.Tier, v.Message)
	}
	switch d.Tier {
	case v1alpha1.TierVM:
		r.vm(w)
	default:
		r.pods(w, d.Tier)
	}
}

// kindOrder is the apply order of kinds: what others depend on comes first.
var kindOrder = map[string]int{
	"RuntimeClass": 0, "NetworkPolicy": 1, "Service": 2,
	"Deployment": 3, "StatefulSet": 3, "VirtualMachine": 4, "HorizontalPodAutoscaler": 5,
}

func sortObjects(objs []Object) {
	slices.SortStableFunc(objs, func(a, b Object) int {
		ka, kb := a.GetObjectKind().GroupVersionKind().Kind, b.GetObjectKind().GroupVersionKind().Kind
		return cmp.Or(cmp.Compare(kindOrder[ka], kindOrder[kb]), cmp.Compare(a.GetName(), b.GetName()), cmp.Compare(ka, kb))
	})
}
