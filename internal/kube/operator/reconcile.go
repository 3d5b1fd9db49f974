package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/assess"
	"strata.dev/strata/internal/kube/apply"
	"strata.dev/strata/internal/kube/crd"
	"strata.dev/strata/internal/kube/render"
	"strata.dev/strata/internal/scale"
)

// verdict is what assessment and rendering said of one Workload.
type verdict struct {
	decision assess.Decision
	assessed bool  // assessment ran
	applied  bool  // rendered with the others and applied
	problem  error // why it was not applied
	reason   string
}

// Reconcile renders, applies and prunes the strata resources of the request's namespace,
// releases deleted Workloads, and writes the status of the live ones.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ns := req.Namespace
	var wl crd.WorkloadList
	if err := r.cached.List(ctx, &wl, client.InNamespace(ns)); err != nil {
		return ctrl.Result{}, err
	}
	var sl crd.SegmentList
	if err := r.cached.List(ctx, &sl, client.InNamespace(ns)); err != nil {
		return ctrl.Result{}, err
	}
	var live, deleted []*crd.Workload
	for i := range wl.Items {
		w := &wl.Items[i]
		if w.DeletionTimestamp != nil {
			deleted = append(deleted, w)
			continue
		}
		live = append(live, w)
	}
	for _, w := range live {
		if controllerutil.AddFinalizer(w, Finalizer) {
			if err := r.cached.Update(ctx, w); err != nil {
				return ctrl.Result{}, fmt.Errorf("add finalizer to workload %s/%s: %w", ns, w.Name, err)
			}
		}
	}
	ropts := render.Options{Namespace: ns, RuntimeClass: r.opts.RuntimeClass, Engine: r.opts.Engine}
	verdicts := map[string]*verdict{}
	var docs render.Documents
	for _, w := range live {
		doc := w.Document()
		v := r.judge(doc, w.Annotations[AnnotationForce] == "true", ropts)
		verdicts[w.Name] = v
		if v.problem == nil {
			docs.Workloads = append(docs.Workloads, doc)
		}
	}
	segments := map[string]*crd.Segment{}
	for i := range sl.Items {
		s := &sl.Items[i]
		if s.DeletionTimestamp != nil {
			continue
		}
		doc := s.Document()
		if _, err := render.Render(render.Documents{Segments: []v1alpha1.Segment{doc}}, ropts); err != nil {
			log(ctx).Error(err, "segment not rendered", "namespace", ns, "segment", s.Name)
			continue
		}
		segments[s.Name] = s
		docs.Segments = append(docs.Segments, doc)
	}
	res, err := render.Render(docs, ropts)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("render namespace %s: %w", ns, err)
	}
	if !r.opts.Scaler.Disabled {
		setFloors(res.Objects, live)
	}
	if err := setOwners(res.Objects, live, verdicts, segments); err != nil {
		return ctrl.Result{}, err
	}
	kept := func(l map[string]string) bool {
		v := verdicts[l[render.LabelWorkload]]
		return v != nil && !v.applied
	}
	if _, err := apply.Apply(ctx, r.direct, res.Objects, apply.Options{
		Namespace: ns, FieldManager: apply.OperatorFieldManager, Set: Set, Prune: true, Keep: kept,
	}); err != nil {
		return ctrl.Result{}, err
	}
	for _, w := range deleted {
		if controllerutil.RemoveFinalizer(w, Finalizer) {
			if err := r.cached.Update(ctx, w); err != nil {
				return ctrl.Result{}, fmt.Errorf("remove finalizer of workload %s/%s: %w", ns, w.Name, err)
			}
		}
	}
	return ctrl.Result{}, r.writeStatus(ctx, ns, live, verdicts)
}

// judge assesses and test-renders one Workload on its own, so that one bad document does not
// hold up the others.
func (r *Reconciler) judge(doc v1alpha1.Workload, force bool, ropts render.Options) *verdict {
	v := &verdict{}
	def := doc
	if b, err := json.Marshal(doc); err == nil {
		def = v1alpha1.Workload{}
		_ = json.Unmarshal(b, &def)
	}
	def.SetDefaults()
	d, err := r.opts.Engine.Assess(&def)
	if err != nil {
		v.problem, v.reason = err, "AssessmentFailed"
		return v
	}
	v.decision, v.assessed = d, true
	if len(d.Violations) > 0 && !force {
		msgs := make([]string, len(d.Violations))
		for i, vi := range d.Violations {
			msgs[i] = vi.Message
		}
		v.problem = fmt.Errorf("not applied: %s (lower the policy's floor, drop spec.isolation, or annotate the workload %s: \"true\")",
			strings.Join(msgs, "; "), AnnotationForce)
		v.reason = "PolicyViolation"
		return v
	}
	if _, err := render.Render(render.Documents{Workloads: []v1alpha1.Workload{doc}}, ropts); err != nil {
		v.problem, v.reason = err, "RenderFailed"
		return v
	}
	v.applied = true
	return v
}

// setFloors sets the minReplicas of each predictive Workload's HorizontalPodAutoscaler to the
// floor the predictive scaler decided (status.scaling.replicas), held within
// [spec.scaling.min, spec.scaling.max]; before its first decision, render's spec.scaling.min
// stays. The floor and the bounds are applied together, in one apply by one field manager,
// so the HPA is valid (minReplicas <= maxReplicas) at every step and a reconcile applies the
// floor again rather than undoing it.
func setFloors(objs []render.Object, live []*crd.Workload) {
	floors := map[string]int32{}
	for _, w := range live {
		sc := w.Spec.Scaling
		if sc == nil || !sc.Predictive || w.Status == nil || w.Status.Scaling == nil {
			continue
		}
		p := scale.PolicyFor(sc)
		floors[w.Name] = int32(min(max(int(w.Status.Scaling.Replicas), p.Min), p.Max))
	}
	for _, o := range objs {
		hpa, ok := o.(*autoscalingv2.HorizontalPodAutoscaler)
		if !ok {
			continue
		}
		if n, ok := floors[hpa.Labels[render.LabelWorkload]]; ok {
			hpa.Spec.MinReplicas = &n
		}
	}
}

// setOwners makes each namespaced object owned by the resources it comes from.
func setOwners(objs []render.Object, live []*crd.Workload, verdicts map[string]*verdict, segments map[string]*crd.Segment) error {
	byName := map[string]*crd.Workload{}
	bySegment := map[string][]*crd.Workload{}
	for _, w := range live {
		if !verdicts[w.Name].applied {
			continue
		}
		byName[w.Name] = w
		seg := w.Document()
		seg.SetDefaults()
		bySegment[seg.Spec.Segment] = append(bySegment[seg.Spec.Segment], w)
	}
	for _, o := range objs {
		if o.GetNamespace() == "" {
			continue // cluster-scoped: the finalizer cleans up after it
		}
		l := o.GetLabels()
		var refs []metav1.OwnerReference
		switch {
		case l[render.LabelWorkload] != "":
			w := byName[l[render.LabelWorkload]]
			if w == nil {
				return fmt.Errorf("%s %s: rendered for workload %s, which is not applied", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), l[render.LabelWorkload])
			}
			refs = []metav1.OwnerReference{ownerRef(w, v1alpha1.KindWorkload, true)}
		case segments[l[render.LabelSegment]] != nil:
			refs = []metav1.OwnerReference{ownerRef(segments[l[render.LabelSegment]], v1alpha1.KindSegment, true)}
		default:
			users := bySegment[l[render.LabelSegment]]
			for _, w := range users {
				refs = append(refs, ownerRef(w, v1alpha1.KindWorkload, len(users) == 1))
			}
		}
		if len(refs) == 0 {
			return errors.New(o.GetName() + ": rendered for no resource")
		}
		slices.SortFunc(refs, func(a, b metav1.OwnerReference) int { return strings.Compare(string(a.UID), string(b.UID)) })
		o.SetOwnerReferences(refs)
	}
	return nil
}

func ownerRef(o metav1.Object, kind string, controller bool) metav1.OwnerReference {
	ref := metav1.OwnerReference{APIVersion: crd.GroupVersion.String(), Kind: kind, Name: o.GetName(), UID: o.GetUID()}
	if controller {
		ref.Controller = &controller
	}
	return ref
}
