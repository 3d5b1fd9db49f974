package apply

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/kube/render"
)

// WorkloadStatus is how one strata workload is doing in a cluster, read from the objects
// that carry its strata.dev/workload label.
type WorkloadStatus struct {
	Name, Namespace, Segment string
	Tier                     v1alpha1.Tier
	// Kind is what runs it: Deployment, StatefulSet or VirtualMachine.
	Kind string
	// Image is the first container's image (empty for VMs).
	Image string
	// Labels are the workload's own labels: the object's, without those strata sets.
	Labels  map[string]string
	Created time.Time
	// Replicas wanted and ready, summed over the workload's objects.
	Replicas, ReadyReplicas int32
	// Ready is true when every object of the workload is ready; Failing when one says that
	// waiting will not make it so.
	Ready, Failing bool
	// VMs are the workload's VirtualMachines, by name.
	VMs []VMStatus
	// Why says, when not ready, what is missing, per object.
	Why []string
}

// VMStatus is one VirtualMachine of a workload.
type VMStatus struct {
	Name            string
	PrintableStatus string
	Ready           bool
	Why             string
}

// Status reads the workloads that strata runs in namespace ns, by name: every Deployment,
// StatefulSet and VirtualMachine labelled app.kubernetes.io/managed-by=strata with a
// strata.dev/workload label, whoever applied it (strata apply or the operator).
func Status(ctx context.Context, c client.Client, ns string) ([]WorkloadStatus, error) {
	hasWorkload, err := labels.NewRequirement(render.LabelWorkload, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	sel := labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy}).Add(*hasWorkload)
	byName := map[string]*WorkloadStatus{}
	for _, gvk := range []schema.GroupVersionKind{KindDeployment, KindStatefulSet, KindVirtualMachine} {
		items, err := list(ctx, c, gvk, sel, client.InNamespace(ns))
		if err != nil {
			return nil, err
		}
		for i := range items {
			if err := add(byName, &items[i]); err != nil {
				return nil, err
			}
		}
	}
	out := make([]WorkloadStatus, 0, len(byName))
	for _, s := range byName {
		slices.SortFunc(s.VMs, func(a, b VMStatus) int { return cmp.Compare(a.Name, b.Name) })
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b WorkloadStatus) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// add counts one object into its workload's status.
func add(byName map[string]*WorkloadStatus, u *unstructured.Unstructured) error {
	l := u.GetLabels()
	name := l[render.LabelWorkload]
	s := byName[name]
	if s == nil {
		s = &WorkloadStatus{
			Name: name, Namespace: u.GetNamespace(), Segment: l[render.LabelSegment],
			Tier: v1alpha1.Tier(l[render.LabelTier]), Kind: u.GetKind(), Labels: ownLabels(l),
			Created: u.GetCreationTimestamp().Time, Ready: true,
		}
		byName[name] = s
	}
	r, err := ReadinessOf(u)
	if err != nil {
		return err
	}
	s.Replicas += r.Replicas
	s.ReadyReplicas += r.ReadyReplicas
	s.Ready = s.Ready && r.Ready
	s.Failing = s.Failing || r.Failing
	if !r.Ready {
		s.Why = append(s.Why, strings.ToLower(u.GetKind())+"/"+u.GetName()+": "+r.Why)
	}
	if t := u.GetCreationTimestamp().Time; t.Before(s.Created) {
		s.Created = t
	}
	switch u.GetKind() {
	case KindVirtualMachine.Kind:
		s.VMs = append(s.VMs, VMStatus{Name: u.GetName(), PrintableStatus: r.PrintableStatus, Ready: r.Ready, Why: r.Why})
	default:
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		if len(containers) > 0 && s.Image == "" {
			if m, ok := containers[0].(map[string]any); ok {
				s.Image, _ = m["image"].(string)
			}
		}
	}
	return nil
}

// strataLabels are the labels strata puts on objects; the rest are the workload's own.
var strataLabels = []string{render.LabelSegment, render.LabelWorkload, render.LabelTier,
	render.LabelName, render.LabelManagedBy, LabelApplySet}

func ownLabels(l map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		if !slices.Contains(strataLabels, k) {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Phase summarizes the workload as the daemon does: Stopped with no replicas wanted, Running
// when ready, Failed when none is ready and a condition says waiting will not help, Degraded
// when some are ready, Pending before any is.
func (s *WorkloadStatus) Phase() v1alpha1.Phase {
	switch {
	case s.Replicas == 0:
		return v1alpha1.PhaseStopped
	case s.Ready:
		return v1alpha1.PhaseRunning
	case s.ReadyReplicas == 0 && s.Failing:
		return v1alpha1.PhaseFailed
	case s.ReadyReplicas > 0:
		return v1alpha1.PhaseDegraded
	}
	return v1alpha1.PhasePending
}

// Instances are the workload's VirtualMachines as the daemon's instances: the VM's name (the
// instance ID, as render names them), and its printable status in lower case as the state.
func (s *WorkloadStatus) Instances() []v1alpha1.Instance {
	var out []v1alpha1.Instance
	for _, vm := range s.VMs {
		state := strings.ToLower(vm.PrintableStatus)
		if state == "" {
			state = "pending"
		}
		out = append(out, v1alpha1.Instance{ID: vm.Name, Tier: v1alpha1.TierVM, State: state, Message: vm.Why})
	}
	return out
}

// Workload returns the status as a Workload document, the shape the daemon answers with:
// what the objects say of the spec (segment, replicas, image) and the status observed.
func (s *WorkloadStatus) Workload() v1alpha1.Workload {
	created := s.Created
	replicas := s.Replicas
	w := v1alpha1.Workload{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindWorkload},
		Metadata: v1alpha1.ObjectMeta{Name: s.Name, Labels: s.Labels, CreationTimestamp: &created},
		Spec:     v1alpha1.WorkloadSpec{Image: s.Image, Segment: s.Segment, Replicas: &replicas},
		Status: &v1alpha1.WorkloadStatus{
			Tier: s.Tier, Phase: s.Phase(), Instances: s.Instances(),
			Replicas: s.Replicas, ReadyReplicas: s.ReadyReplicas,
			Conditions: []v1alpha1.Condition{s.ReadyCondition(created)},
		},
	}
	return w
}

// ReadyCondition is the Ready condition of the workload, changed at the time given.
func (s *WorkloadStatus) ReadyCondition(at time.Time) v1alpha1.Condition {
	if s.Ready {
		return v1alpha1.Condition{Type: "Ready", Status: v1alpha1.ConditionTrue, Reason: "Ready",
			Message: readyMessage(s), LastTransitionTime: at}
	}
	return v1alpha1.Condition{Type: "Ready", Status: v1alpha1.ConditionFalse, Reason: string(s.Phase()),
		Message: strings.Join(s.Why, "; "), LastTransitionTime: at}
}

func readyMessage(s *WorkloadStatus) string {
	if s.Replicas == 0 {
		return "no replicas wanted"
	}
	return "all replicas ready"
}
