package render

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"strata.dev/strata/api/v1alpha1"
)

// This file holds the parts of a pod that containers, sandboxes and VMs share: ports, health
// checks, spread and node selection.

// container is w's one container.
func container(w *v1alpha1.Workload) corev1.Container {
	c := corev1.Container{
		Name:      w.Metadata.Name,
		Image:     w.Spec.Image,
		Command:   slices.Clone(w.Spec.Command),
		Env:       envVars(w.Spec.Env),
		Ports:     containerPorts(w.Spec.Ports),
		Resources: containerResources(w.Spec.Resources),
	}
	if h := w.Spec.Health; h != nil {
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: probeHandler(h), PeriodSeconds: h.IntervalSeconds, FailureThreshold: h.FailureThreshold}
		c.LivenessProbe = c.ReadinessProbe.DeepCopy()
	}
	for _, v := range w.Spec.Volumes {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: v.Name, MountPath: v.MountPath})
	}
	return c
}

// envVars lists env in name order, so that the output is stable.
func envVars(env map[string]string) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, corev1.EnvVar{Name: k, Value: env[k]})
	}
	return out
}

func protocol(p v1alpha1.Protocol) corev1.Protocol {
	if p == v1alpha1.ProtocolUDP {
		return corev1.ProtocolUDP
	}
	return corev1.ProtocolTCP
}

func containerPorts(ports []v1alpha1.Port) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, p := range ports {
		cp := corev1.ContainerPort{ContainerPort: p.Port, Protocol: protocol(p.Protocol)}
		if ianaServiceName(p.Name) {
			cp.Name = p.Name // a longer name still names the Service port
		}
		out = append(out, cp)
	}
	return out
}

// ianaServiceName reports whether name can name a container port: at most 15 characters
// with a letter, and no "--".
func ianaServiceName(name string) bool {
	return name != "" && len(name) <= 15 && strings.ContainsAny(name, "abcdefghijklmnopqrstuvwxyz") && !strings.Contains(name, "--")
}

// containerResources requests what strata lets one replica use, and limits it to the same:
// strata's resources are both a reservation (placement) and a cap (cgroups).
func containerResources(r v1alpha1.Resources) corev1.ResourceRequirements {
	list := corev1.ResourceList{corev1.ResourceCPU: r.CPU.DeepCopy(), corev1.ResourceMemory: r.Memory.DeepCopy()}
	if r.Disk != nil {
		list[corev1.ResourceEphemeralStorage] = r.Disk.DeepCopy()
	}
	return corev1.ResourceRequirements{Requests: list, Limits: list.DeepCopy()}
}

// probeHandler is the one probe a validated health check declares.
func probeHandler(h *v1alpha1.HealthCheck) corev1.ProbeHandler {
	switch {
	case h.HTTP != nil:
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: h.HTTP.Path, Port: intstr.FromInt32(h.HTTP.Port)}}
	case h.TCP != nil:
		return corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(h.TCP.Port)}}
	case h.Exec != nil:
		return corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: slices.Clone(h.Exec.Command)}}
	}
	return corev1.ProbeHandler{}
}

// Topology keys that strata's spreads map to.
const (
	TopologyHost = "kubernetes.io/hostname"
	TopologyZone = "topology.kubernetes.io/zone"
)

// spread keeps w's replicas on distinct nodes (or zones) as far as it can: at most one more
// on any node than on another, and none scheduled that would break that.
func spread(w *v1alpha1.Workload) []corev1.TopologySpreadConstraint {
	key := ""
	switch w.Spec.Placement.Spread {
	case v1alpha1.SpreadHost:
		key = TopologyHost
	case v1alpha1.SpreadZone:
		key = TopologyZone
	default:
		return nil
	}
	return []corev1.TopologySpreadConstraint{{
		MaxSkew:           1,
		TopologyKey:       key,
		WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector:     labelSelector(selectorOf(w)),
	}}
}

// service exposes w's ports on the pods selectorOf(w) selects, or is nil when w has none.
// A published port is also offered on its host port number, through a load balancer.
func service(w *v1alpha1.Workload, tier v1alpha1.Tier, namespace string) *corev1.Service {
	if len(w.Spec.Ports) == 0 {
		return nil
	}
	s := &corev1.Service{
		TypeMeta:   typeMeta("v1", "Service"),
		ObjectMeta: objectMeta(w.Metadata.Name, namespace, workloadLabels(w, tier)),
		Spec:       corev1.ServiceSpec{Selector: selectorOf(w)},
	}
	for _, p := range w.Spec.Ports {
		name := portName(p)
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{
			Name: name, Port: p.Port, TargetPort: intstr.FromInt32(p.Port), Protocol: protocol(p.Protocol),
		})
	}
	for _, p := range w.Spec.Ports {
		if p.Publish == 0 {
			continue
		}
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		if p.Publish == p.Port {
			continue // already offered on that number
		}
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{
			Name: portName(p) + "-published", Port: p.Publish, TargetPort: intstr.FromInt32(p.Port), Protocol: protocol(p.Protocol),
		})
	}
	return s
}

// portName names a Service port: the port's own name, else protocol and number.
func portName(p v1alpha1.Port) string {
	if p.Name != "" {
		return p.Name
	}
	return fmt.Sprintf("%s-%d", p.Protocol, p.Port)
}
