package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"strata.dev/strata/internal/kube/render"
)

// LabelApplySet names the apply set an object belongs to.
const LabelApplySet = "strata.dev/apply-set"

// Field managers.
const (
	FieldManager         = "strata"
	OperatorFieldManager = "strata-operator"
)

// Defaults of Options.
const (
	DefaultTimeout = 5 * time.Minute
	DefaultPoll    = 2 * time.Second
)

// Options tune Apply.
type Options struct {
	// Namespace of the namespaced objects; an object naming another namespace is an error.
	// Default render.DefaultNamespace.
	Namespace string
	// FieldManager applies the objects. Default FieldManager.
	FieldManager string
	// Set names the apply set. Default: the namespace.
	Set string
	// ForceConflicts takes over fields that other field managers own instead of failing.
	ForceConflicts bool
	// Prune deletes the set's objects that were not applied.
	Prune bool
	// Keep, when set, spares from pruning the objects for whose labels it returns true.
	Keep func(labels map[string]string) bool
	// Wait polls until every applied object is ready, or Timeout passes.
	Wait bool
	// Timeout bounds the wait. Default DefaultTimeout.
	Timeout time.Duration
	// Poll is the time between two readiness checks. Default DefaultPoll.
	Poll time.Duration
	// Progress shows the wait, one line per workload; nil shows nothing.
	Progress io.Writer
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = render.DefaultNamespace
	}
	if o.FieldManager == "" {
		o.FieldManager = FieldManager
	}
	if o.Set == "" {
		o.Set = o.Namespace
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	return o
}

// Outcome is what applying did to one object.
type Outcome string

// Outcomes.
const (
	Created    Outcome = "created"
	Configured Outcome = "configured"
	Unchanged  Outcome = "unchanged"
	Pruned     Outcome = "pruned"
)

// Change is the outcome for one object.
type Change struct {
	Kind      string
	Namespace string // empty for cluster-scoped objects
	Name      string
	Outcome   Outcome
}

// String prints the change as kind/name outcome, the kind in lower case.
func (c Change) String() string {
	return strings.ToLower(c.Kind) + "/" + c.Name + " " + string(c.Outcome)
}

// Result is what Apply did, in order: the applied objects in apply order, then the pruned.
type Result struct {
	Changes []Change
}

// ErrInvalid marks options or objects that cannot be applied as given.
var ErrInvalid = errors.New("invalid")

// ConflictError is a server-side apply conflict: another field manager owns fields that the
// object sets.
type ConflictError struct {
	Kind, Namespace, Name string
	// Managers owning the conflicting fields, with the fields, as the API server lists them.
	Conflicts []string
	Err       error
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s: fields owned by another field manager: %s (change them with the tool that owns them, or apply with --force-conflicts to take them over)",
		objectName(e.Kind, e.Namespace, e.Name), strings.Join(e.Conflicts, "; "))
}

func (e *ConflictError) Unwrap() error { return e.Err }

func objectName(kind, ns, name string) string {
	s := strings.ToLower(kind) + "/" + name
	if ns != "" {
		s += " in namespace " + ns
	}
	return s
}

// Apply applies every object with server-side apply, in order, then prunes (Options.Prune)
// and waits (Options.Wait). It stops at the first object that cannot be applied; the
// result holds what was done before. The objects are not changed.
func Apply(ctx context.Context, c client.Client, objs []render.Object, opts Options) (*Result, error) {
	opts = opts.withDefaults()
	if errs := validation.IsValidLabelValue(opts.Set); len(errs) > 0 {
		return nil, fmt.Errorf("apply set %q: %s: %w", opts.Set, strings.Join(errs, "; "), ErrInvalid)
	}
	us, err := unstructuredObjects(objs)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	applied := map[objectKey]bool{}
	for _, u := range us {
		ch, err := applyOne(ctx, c, u, opts)
		if err != nil {
			return res, err
		}
		res.Changes = append(res.Changes, ch)
		applied[keyOf(u)] = true
	}
	if opts.Prune {
		pruned, err := prune(ctx, c, opts, applied)
		res.Changes = append(res.Changes, pruned...)
		if err != nil {
			return res, err
		}
	}
	if opts.Wait {
		if err := Wait(ctx, c, us, opts); err != nil {
			return res, err
		}
	}
	return res, nil
}

// unstructuredObjects turns rendered objects into unstructured ones, without what a typed
// object writes and an apply must not claim: status, a null creationTimestamp, empty structs.
// render.JSON already strips exactly that.
func unstructuredObjects(objs []render.Object) ([]*unstructured.Unstructured, error) {
	b, err := render.JSON(objs)
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("decode the rendered objects: %w", err)
	}
	out := make([]*unstructured.Unstructured, len(list.Items))
	for i, it := range list.Items {
		out[i] = &unstructured.Unstructured{Object: it}
	}
	return out, nil
}

// objectKey identifies an object in the cluster.
type objectKey struct {
	gk        schema.GroupKind
	namespace string
	name      string
}

func keyOf(u *unstructured.Unstructured) objectKey {
	return objectKey{gk: u.GroupVersionKind().GroupKind(), namespace: u.GetNamespace(), name: u.GetName()}
}

// applyOne applies u as a member of the set and says what changed: the resourceVersion
// before and after tell unchanged from configured.
func applyOne(ctx context.Context, c client.Client, u *unstructured.Unstructured, opts Options) (Change, error) {
	gvk := u.GroupVersionKind()
	namespaced, err := c.IsObjectNamespaced(u)
	if err != nil {
		return Change{}, notServed(gvk, u.GetName(), err)
	}
	switch {
	case !namespaced:
		u.SetNamespace("")
	case u.GetNamespace() == "":
		u.SetNamespace(opts.Namespace)
	case u.GetNamespace() != opts.Namespace:
		return Change{}, fmt.Errorf("%s: rendered for namespace %s, applying to %s (render with the same namespace): %w",
			objectName(gvk.Kind, u.GetNamespace(), u.GetName()), u.GetNamespace(), opts.Namespace, ErrInvalid)
	}
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelApplySet] = opts.Set
	labels[render.LabelManagedBy] = render.ManagedBy
	u.SetLabels(labels)
	ch := Change{Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}

	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(gvk)
	before := ""
	switch err := c.Get(ctx, client.ObjectKeyFromObject(u), cur); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return ch, fmt.Errorf("read %s: %w", objectName(gvk.Kind, ch.Namespace, ch.Name), err)
	default:
		before = cur.GetResourceVersion()
	}

	out := u.DeepCopy()
	applyOpts := []client.ApplyOption{client.FieldOwner(opts.FieldManager)}
	if opts.ForceConflicts {
		applyOpts = append(applyOpts, client.ForceOwnership)
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(out), applyOpts...); err != nil {
		return ch, applyError(ch, err)
	}
	switch after := out.GetResourceVersion(); {
	case before == "":
		ch.Outcome = Created
	case after == before:
		ch.Outcome = Unchanged
	default:
		ch.Outcome = Configured
	}
	return ch, nil
}

// applyError explains why the API server refused an object.
func applyError(ch Change, err error) error {
	name := objectName(ch.Kind, ch.Namespace, ch.Name)
	if apierrors.IsConflict(err) {
		ce := &ConflictError{Kind: ch.Kind, Namespace: ch.Namespace, Name: ch.Name, Err: err}
		var status apierrors.APIStatus
		if errors.As(err, &status) && status.Status().Details != nil {
			for _, cause := range status.Status().Details.Causes {
				if cause.Type == metav1.CauseTypeFieldManagerConflict {
					ce.Conflicts = append(ce.Conflicts, cause.Message+" on "+cause.Field)
				}
			}
		}
		if len(ce.Conflicts) == 0 {
			ce.Conflicts = []string{err.Error()}
		}
		return ce
	}
	if meta.IsNoMatchError(err) {
		return notServed(schema.FromAPIVersionAndKind("", ch.Kind), ch.Name, err)
	}
	return fmt.Errorf("apply %s: %w", name, err)
}

// notServed explains a kind the cluster does not know.
func notServed(gvk schema.GroupVersionKind, name string, err error) error {
	if !meta.IsNoMatchError(err) {
		return fmt.Errorf("%s %s: %w", gvk.Kind, name, err)
	}
	hint := "check the cluster's version"
	if gvk.Group == "kubevirt.io" || gvk.Kind == "VirtualMachine" {
		hint = "install KubeVirt in the cluster to run VM-tier workloads"
	}
	return fmt.Errorf("%s %s: the cluster does not serve %s (%s): %w", strings.ToLower(gvk.Kind), name, gvk.Kind, hint, err)
}
