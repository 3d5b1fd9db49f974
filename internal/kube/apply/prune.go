package apply

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"strata.dev/strata/internal/kube/render"
)

// Kinds strata renders, in prune order: the reverse of apply order, so that nothing is left
// pointing at what is already gone. RuntimeClass is cluster-scoped and comes last.
var (
	KindAutoscaler     = schema.GroupVersionKind{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"}
	KindVirtualMachine = schema.GroupVersionKind{Group: "kubevirt.io", Version: "v1", Kind: "VirtualMachine"}
	KindDeployment     = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	KindStatefulSet    = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
	KindService        = schema.GroupVersionKind{Version: "v1", Kind: "Service"}
	KindNetworkPolicy  = schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}
	KindRuntimeClass   = schema.GroupVersionKind{Group: "node.k8s.io", Version: "v1", Kind: "RuntimeClass"}

	namespacedKinds = []schema.GroupVersionKind{KindAutoscaler, KindVirtualMachine, KindDeployment, KindStatefulSet, KindService, KindNetworkPolicy}
)

// prune deletes the set's objects that were not applied.
func prune(ctx context.Context, c client.Client, opts Options, applied map[objectKey]bool) ([]Change, error) {
	sel := labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy, LabelApplySet: opts.Set})
	var out []Change
	for _, gvk := range namespacedKinds {
		items, err := list(ctx, c, gvk, sel, client.InNamespace(opts.Namespace))
		if err != nil {
			return out, err
		}
		for i := range items {
			u := &items[i]
			if applied[keyOf(u)] || opts.Keep != nil && opts.Keep(u.GetLabels()) {
				continue
			}
			if err := remove(ctx, c, u); err != nil {
				return out, err
			}
			out = append(out, Change{Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName(), Outcome: Pruned})
		}
	}
	rcs, err := pruneRuntimeClasses(ctx, c, applied)
	return append(out, rcs...), err
}

// pruneRuntimeClasses deletes the RuntimeClasses labelled by strata with an apply set (any
// set: one RuntimeClass serves the sandboxes of every namespace) that are not in keep and that
// no live Deployment or StatefulSet managed by strata names, in any namespace.
func pruneRuntimeClasses(ctx context.Context, c client.Client, keep map[objectKey]bool) ([]Change, error) {
	hasSet, err := labels.NewRequirement(LabelApplySet, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	sel := labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy}).Add(*hasSet)
	rcs, err := list(ctx, c, KindRuntimeClass, sel)
	if err != nil || len(rcs) == 0 {
		return nil, err
	}
	used, err := runtimeClassesInUse(ctx, c)
	if err != nil {
		return nil, err
	}
	var out []Change
	for i := range rcs {
		u := &rcs[i]
		if keep[keyOf(u)] || used[u.GetName()] {
			continue
		}
		if err := remove(ctx, c, u); err != nil {
			return out, err
		}
		out = append(out, Change{Kind: KindRuntimeClass.Kind, Name: u.GetName(), Outcome: Pruned})
	}
	return out, nil
}

// runtimeClassesInUse are the RuntimeClasses that the pod templates of strata's live
// Deployments and StatefulSets name, in every namespace.
func runtimeClassesInUse(ctx context.Context, c client.Client) (map[string]bool, error) {
	sel := labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy})
	used := map[string]bool{}
	for _, gvk := range []schema.GroupVersionKind{KindDeployment, KindStatefulSet} {
		items, err := list(ctx, c, gvk, sel)
		if err != nil {
			return nil, err
		}
		for _, u := range items {
			if u.GetDeletionTimestamp() != nil {
				continue
			}
			name, _, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "runtimeClassName")
			if name != "" {
				used[name] = true
			}
		}
	}
	return used, nil
}

// list lists the objects of a kind that match sel; a kind the cluster does not serve has none.
func list(ctx context.Context, c client.Client, gvk schema.GroupVersionKind, sel labels.Selector, opts ...client.ListOption) ([]unstructured.Unstructured, error) {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
	if err := c.List(ctx, l, opts...); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s objects: %w", gvk.Kind, err)
	}
	return l.Items, nil
}

// remove deletes u, its dependents in the background (a StatefulSet's pods, a
// VirtualMachine's instance), and is content when it is already gone.
func remove(ctx context.Context, c client.Client, u *unstructured.Unstructured) error {
	err := c.Delete(ctx, u, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("prune %s: %w", objectName(u.GetKind(), u.GetNamespace(), u.GetName()), err)
	}
	return nil
}
