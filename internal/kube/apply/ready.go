package apply

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// Readiness is how far one object is from ready.
type Readiness struct {
	Ready bool
	// Replicas wanted and ready: a Deployment's or StatefulSet's; 1 or 0 for a VirtualMachine
	// (0 when it is meant to be halted).
	Replicas, ReadyReplicas int32
	// Failing is true when a condition says the object cannot become ready by waiting (a
	// deadline passed, an image cannot be pulled), not merely that it is not ready yet.
	Failing bool
	// Why says, when not ready, what is missing, with the object's conditions.
	Why string
	// PrintableStatus is a VirtualMachine's status.printableStatus.
	PrintableStatus string
}

// waited says whether readiness means anything for a kind; the others are ready once applied.
func waited(kind string) bool {
	return kind == KindDeployment.Kind || kind == KindStatefulSet.Kind || kind == KindVirtualMachine.Kind
}

// ReadinessOf reads the readiness of a Deployment, StatefulSet or VirtualMachine from its
// status; any other object is ready.
func ReadinessOf(u *unstructured.Unstructured) (Readiness, error) {
	switch u.GetKind() {
	case KindDeployment.Kind:
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
			return Readiness{}, fmt.Errorf("read deployment %s: %w", u.GetName(), err)
		}
		r := replicaReadiness("deployment", d.Generation, d.Status.ObservedGeneration, d.Spec.Replicas, d.Status.ReadyReplicas)
		for _, c := range d.Status.Conditions {
			bad := c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue ||
				c.Type != appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionFalse
			if bad {
				r.note(string(c.Type), string(c.Status), c.Reason, c.Message)
				r.Failing = r.Failing || c.Type == appsv1.DeploymentReplicaFailure || c.Reason == "ProgressDeadlineExceeded"
			}
		}
		return r, nil
	case KindStatefulSet.Kind:
		var s appsv1.StatefulSet
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
			return Readiness{}, fmt.Errorf("read statefulset %s: %w", u.GetName(), err)
		}
		r := replicaReadiness("statefulset", s.Generation, s.Status.ObservedGeneration, s.Spec.Replicas, s.Status.ReadyReplicas)
		for _, c := range s.Status.Conditions {
			if c.Status == corev1.ConditionFalse {
				r.note(string(c.Type), string(c.Status), c.Reason, c.Message)
			}
		}
		return r, nil
	case KindVirtualMachine.Kind:
		var vm kubevirtv1.VirtualMachine
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &vm); err != nil {
			return Readiness{}, fmt.Errorf("read virtualmachine %s: %w", u.GetName(), err)
		}
		return vmReadiness(&vm), nil
	}
	return Readiness{Ready: true}, nil
}

// replicaReadiness is the readiness of a Deployment or StatefulSet: its controller has seen
// the latest generation, and exactly the wanted replicas are ready.
func replicaReadiness(what string, generation, observed int64, replicas *int32, ready int32) Readiness {
	want := int32(1)
	if replicas != nil {
		want = *replicas
	}
	r := Readiness{Replicas: want, ReadyReplicas: ready}
	switch {
	case observed < generation:
		r.Why = fmt.Sprintf("%d of %d replicas ready; the %s controller has not observed generation %d yet (observed %d)",
			ready, want, what, generation, observed)
	case ready != want:
		r.Why = fmt.Sprintf("%d of %d replicas ready", ready, want)
	default:
		r.Ready = true
	}
	return r
}

// failingVMStatuses are printable statuses that waiting does not cure.
var failingVMStatuses = []kubevirtv1.VirtualMachinePrintableStatus{
	kubevirtv1.VirtualMachineStatusCrashLoopBackOff, kubevirtv1.VirtualMachineStatusUnschedulable,
	kubevirtv1.VirtualMachineStatusErrImagePull, kubevirtv1.VirtualMachineStatusImagePullBackOff,
	kubevirtv1.VirtualMachineStatusPvcNotFound, kubevirtv1.VirtualMachineStatusDataVolumeError,
}

// vmReadiness: a VirtualMachine is ready when its status says so (or it is Running); one that
// is meant to be halted is ready as it is.
func vmReadiness(vm *kubevirtv1.VirtualMachine) Readiness {
	r := Readiness{Replicas: 1, PrintableStatus: string(vm.Status.PrintableStatus)}
	if vm.Spec.RunStrategy != nil && *vm.Spec.RunStrategy == kubevirtv1.RunStrategyHalted {
		r.Replicas, r.Ready = 0, true
		return r
	}
	if vm.Status.Ready || vm.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusRunning {
		r.ReadyReplicas, r.Ready = 1, true
		return r
	}
	switch vm.Status.PrintableStatus {
	case "":
		r.Why = "no status yet (is KubeVirt running in the cluster?)"
	default:
		r.Why = "printableStatus " + string(vm.Status.PrintableStatus)
	}
	r.Failing = slices.Contains(failingVMStatuses, vm.Status.PrintableStatus)
	for _, c := range vm.Status.Conditions {
		bad := c.Status == corev1.ConditionFalse && c.Type == kubevirtv1.VirtualMachineReady ||
			c.Status == corev1.ConditionTrue && c.Type == kubevirtv1.VirtualMachineFailure
		if bad {
			r.note(string(c.Type), string(c.Status), c.Reason, c.Message)
		}
	}
	return r
}

// note adds a condition to Why, as Type=Status Reason: message.
func (r *Readiness) note(typ, status, reason, message string) {
	s := typ + "=" + status
	if reason != "" {
		s += " " + reason
	}
	if message != "" {
		s += ": " + message
	}
	if r.Why == "" {
		r.Why = s
		return
	}
	r.Why = strings.Join([]string{r.Why, s}, "; ")
}
