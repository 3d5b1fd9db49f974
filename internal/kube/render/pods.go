package render

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"strata.dev/strata/api/v1alpha1"
)

// DefaultVolumeSize is the claim of a volume that gives no size.
const DefaultVolumeSize = "1Gi"

// pods renders a container- or sandbox-tier workload: a Deployment, or a StatefulSet when it
// has volumes, and the Service of its ports.
func (r *renderer) pods(w *v1alpha1.Workload, tier v1alpha1.Tier) {
	if w.Spec.Image == "" {
		r.fail(&Error{Kind: v1alpha1.KindWorkload, Name: w.Metadata.Name, Field: "spec.image",
			Problem: fmt.Sprintf("the %s tier runs an OCI image, and the workload names none", tier),
			Hint:    "set spec.image, or set spec.isolation: vm to boot its spec.vm"})
		return
	}
	if !r.expose(w, tier) {
		return
	}
	labels := workloadLabels(w, tier)
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			Containers:                []corev1.Container{container(w)},
			NodeSelector:              w.Spec.Placement.HostSelector,
			TopologySpreadConstraints: spread(w),
		},
	}
	if tier == v1alpha1.TierSandbox {
		template.Spec.RuntimeClassName = &r.opts.RuntimeClass
		r.addRuntimeClass()
	}
	if w.Spec.RestartPolicy != v1alpha1.RestartAlways {
		r.note(w, "restartPolicy %s does not map: the pods of a Deployment or StatefulSet are always restarted", w.Spec.RestartPolicy)
	}
	// With spec.scaling the HorizontalPodAutoscaler owns the replica count: the workload
	// object leaves it out, so that applying the documents again does not undo its work.
	var replicas *int32
	if w.Spec.Scaling == nil {
		n := w.Spec.ReplicaCount()
		replicas = &n
	}
	meta := objectMeta(w.Metadata.Name, r.opts.Namespace, labels)
	kind := "Deployment"
	if len(w.Spec.Volumes) == 0 {
		r.add(&appsv1.Deployment{
			TypeMeta:   typeMeta("apps/v1", "Deployment"),
			ObjectMeta: meta,
			Spec:       appsv1.DeploymentSpec{Replicas: replicas, Selector: labelSelector(selectorOf(w)), Template: template},
		})
	} else {
		kind = "StatefulSet"
		r.add(&appsv1.StatefulSet{
			TypeMeta:   typeMeta("apps/v1", "StatefulSet"),
			ObjectMeta: meta,
			Spec: appsv1.StatefulSetSpec{
				Replicas: replicas, Selector: labelSelector(selectorOf(w)), Template: template,
				ServiceName: w.Metadata.Name, VolumeClaimTemplates: r.claims(w, tier),
			},
		})
	}
	if w.Spec.Scaling != nil {
		r.autoscaler(w, kind, labels)
	}
}

// claims are a StatefulSet's volumeClaimTemplates: one ReadWriteOnce claim per volume, so that
// every replica has its own, as on one host.
func (r *renderer) claims(w *v1alpha1.Workload, tier v1alpha1.Tier) []corev1.PersistentVolumeClaim {
	var out []corev1.PersistentVolumeClaim
	for _, v := range w.Spec.Volumes {
		size := resource.MustParse(DefaultVolumeSize)
		if v.Size != nil {
			size = v.Size.DeepCopy()
		} else {
			r.note(w, "volume %s gives no size; it claims %s (set spec.volumes[].size)", v.Name, DefaultVolumeSize)
		}
		out = append(out, corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: v.Name, Labels: workloadLabels(w, tier)},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			},
		})
	}
	return out
}

// SandboxMemoryOverhead is the memory the sandboxes' RuntimeClass declares as each pod's
// overhead (overhead.podFixed): what gVisor's own processes (its kernel and file proxy) hold in
// the pod's cgroups. Measured at 22-24 MiB beside an idle busybox server that holds 1.3 MiB
// under runc (docs/kubernetes-tests.md), rounded up. The scheduler counts it on top of the
// containers' requests and the kubelet adds it to the pod's memory limit, so that a sandboxed
// workload keeps the memory its resources give it, as on one host.
const SandboxMemoryOverhead = "32Mi"

// addRuntimeClass emits the sandboxes' RuntimeClass, once.
func (r *renderer) addRuntimeClass() {
	if r.runtimeClass {
		return
	}
	r.runtimeClass = true
	r.add(&nodev1.RuntimeClass{
		TypeMeta:   typeMeta("node.k8s.io/v1", "RuntimeClass"),
		ObjectMeta: objectMeta(r.opts.RuntimeClass, "", map[string]string{LabelName: r.opts.RuntimeClass, LabelManagedBy: ManagedBy}),
		Handler:    r.opts.RuntimeClass,
		Overhead: &nodev1.Overhead{PodFixed: corev1.ResourceList{
			corev1.ResourceMemory: resource.MustParse(SandboxMemoryOverhead),
		}},
	})
}

// expose renders w's Service and, when it publishes ports, the NetworkPolicy that admits
// anyone to them: a published port answers whoever reaches the host, instances of every
// segment included. It reports false when a published port cannot be rendered.
func (r *renderer) expose(w *v1alpha1.Workload, tier v1alpha1.Tier) bool {
	offered := map[string]bool{}
	for _, p := range w.Spec.Ports {
		offered[fmt.Sprintf("%d/%s", p.Port, p.Protocol)] = true
	}
	var ports []networkingv1.NetworkPolicyPort
	for i, p := range w.Spec.Ports {
		if p.Publish == 0 {
			continue
		}
		if p.Publish != p.Port && offered[fmt.Sprintf("%d/%s", p.Publish, p.Protocol)] {
			r.fail(&Error{Kind: v1alpha1.KindWorkload, Name: w.Metadata.Name, Field: fmt.Sprintf("spec.ports[%d].publish", i),
				Problem: fmt.Sprintf("host port %d is also a port of the workload, and the Service can offer it only once", p.Publish),
				Hint:    "publish on a number the workload does not listen on"})
			return false
		}
		proto, port := protocol(p.Protocol), intstr.FromInt32(p.Port)
		ports = append(ports, networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &port})
	}
	if s := service(w, tier, r.opts.Namespace); s != nil {
		r.add(s)
	}
	if len(ports) > 0 {
		r.add(&networkingv1.NetworkPolicy{
			TypeMeta:   typeMeta("networking.k8s.io/v1", "NetworkPolicy"),
			ObjectMeta: objectMeta(w.Metadata.Name+"-published", r.opts.Namespace, workloadLabels(w, tier)),
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: *labelSelector(selectorOf(w)),
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: ports}},
			},
		})
	}
	return true
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

func objectMeta(name, namespace string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels}
}

func labelSelector(m map[string]string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: m}
}
