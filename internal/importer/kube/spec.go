package kube

import (
	"fmt"
	pathpkg "path"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"strata.dev/strata/api/v1alpha1"
)

// running lists the containers that run for the pod's whole life, and where each is: the
// regular containers, then the init containers with restartPolicy Always (sidecars).
func running(ps *corev1.PodSpec, spec path) ([]*corev1.Container, []path) {
	var cs []*corev1.Container
	var at []path
	for i := range ps.Containers {
		cs = append(cs, &ps.Containers[i])
		at = append(at, spec.to("containers", i))
	}
	for i := range ps.InitContainers {
		c := &ps.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			cs = append(cs, c)
			at = append(at, spec.to("initContainers", i))
		}
	}
	return cs, at
}

// resources sums what the running containers request, a container's limit standing in for
// a request it lacks. Quantities stay exact. Resources nobody states are left zero, for
// the defaults.
func (b *builder) resources() v1alpha1.Resources {
	var r v1alpha1.Resources
	var disk resource.Quantity
	sums := []struct {
		name corev1.ResourceName
		sum  *resource.Quantity
	}{
		{corev1.ResourceCPU, &r.CPU},
		{corev1.ResourceMemory, &r.Memory},
		{corev1.ResourceEphemeralStorage, &disk},
	}
	cs, at := running(&b.p.template.Spec, b.spec)
	for i, c := range cs {
		for _, s := range sums {
			from, list := "requests", c.Resources.Requests
			q, ok := list[s.name]
			if !ok {
				from, list = "limits", c.Resources.Limits
				q, ok = list[s.name]
			}
			if !ok {
				continue
			}
			if q.Sign() < 0 {
				b.errs = append(b.errs, b.o.errorf(at[i].to("resources", from, key(s.name)),
					"use a positive quantity such as 500m or 256Mi", "negative %s %s %s", s.name, strings.TrimSuffix(from, "s"), q.String()))
				continue
			}
			s.sum.Add(q)
		}
	}
	if disk.Sign() > 0 {
		r.Disk = &disk
	}
	return r
}

// ports lists the ports of the regular containers, each port and protocol once. A port's
// name is kept when it is a DNS label not used before; a hostPort publishes the port.
// SCTP ports are left out: strata's segments carry TCP and UDP.
func (b *builder) ports() []v1alpha1.Port {
	var out []v1alpha1.Port
	seen, names := map[string]bool{}, map[string]bool{}
	for i, c := range b.p.template.Spec.Containers {
		for j, cp := range c.Ports {
			at := b.spec.to("containers", i, "ports", j)
			proto := v1alpha1.Protocol(strings.ToLower(string(cp.Protocol)))
			switch proto {
			case "":
				proto = v1alpha1.ProtocolTCP
			case v1alpha1.ProtocolTCP, v1alpha1.ProtocolUDP:
			case "sctp":
				continue
			default:
				b.errs = append(b.errs, b.o.errorf(at.to("protocol"), "use TCP or UDP", "unsupported protocol %q", string(cp.Protocol)))
				continue
			}
			if !validPort(cp.ContainerPort) {
				b.errs = append(b.errs, b.o.errorf(at.to("containerPort"), "use a port between 1 and 65535",
					"containerPort %d is out of range", cp.ContainerPort))
				continue
			}
			if cp.HostPort != 0 && !validPort(cp.HostPort) {
				b.errs = append(b.errs, b.o.errorf(at.to("hostPort"), "use a port between 1 and 65535",
					"hostPort %d is out of range", cp.HostPort))
				continue
			}
			k := fmt.Sprintf("%d/%s", cp.ContainerPort, proto)
			if seen[k] {
				continue
			}
			seen[k] = true
			p := v1alpha1.Port{Port: cp.ContainerPort, Protocol: proto, Publish: cp.HostPort}
			if cp.Name != "" && len(validation.IsDNS1123Label(cp.Name)) == 0 && !names[cp.Name] {
				p.Name = cp.Name
				names[cp.Name] = true
			}
			out = append(out, p)
		}
	}
	return out
}

func validPort(p int32) bool { return p >= 1 && p <= 65535 }

// health turns the main container's liveness probe (its readiness probe when it has none)
// into a health check. gRPC probes have no strata equivalent and are left out.
func (b *builder) health(c *corev1.Container) *v1alpha1.HealthCheck {
	probe, at := c.LivenessProbe, b.spec.to("containers", 0, "livenessProbe")
	if probe == nil {
		probe, at = c.ReadinessProbe, b.spec.to("containers", 0, "readinessProbe")
	}
	if probe == nil {
		return nil
	}
	h := &v1alpha1.HealthCheck{}
	switch {
	case probe.HTTPGet != nil:
		port, ok := b.probePort(c, probe.HTTPGet.Port, at.to("httpGet", "port"))
		if !ok {
			return nil
		}
		p := probe.HTTPGet.Path
		if p != "" && !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		h.HTTP = &v1alpha1.HTTPProbe{Path: p, Port: port}
	case probe.TCPSocket != nil:
		port, ok := b.probePort(c, probe.TCPSocket.Port, at.to("tcpSocket", "port"))
		if !ok {
			return nil
		}
		h.TCP = &v1alpha1.TCPProbe{Port: port}
	case probe.Exec != nil && len(probe.Exec.Command) > 0:
		h.Exec = &v1alpha1.ExecProbe{Command: slices.Clone(probe.Exec.Command)}
	default:
		return nil
	}
	if probe.PeriodSeconds > 0 {
		h.IntervalSeconds = probe.PeriodSeconds
	}
	if probe.FailureThreshold > 0 {
		h.FailureThreshold = probe.FailureThreshold
	}
	return h
}

// probePort resolves a probe's port: a number, or the name of one of the container's ports.
func (b *builder) probePort(c *corev1.Container, v intstr.IntOrString, at path) (int32, bool) {
	port := v.IntVal
	if v.Type == intstr.String {
		if n, err := strconv.ParseInt(v.StrVal, 10, 32); err == nil {
			port = int32(n)
		} else {
			i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == v.StrVal })
			if i < 0 {
				b.errs = append(b.errs, b.o.errorf(at, "name one of the container's ports, or give the port number",
					"probe port %q names no port of container %q", v.StrVal, c.Name))
				return 0, false
			}
			port = c.Ports[i].ContainerPort
		}
	}
	if !validPort(port) {
		b.errs = append(b.errs, b.o.errorf(at, "use a port between 1 and 65535", "probe port %d is out of range", port))
		return 0, false
	}
	return port, true
}

// volumes lists the persistent volumes: the pod's persistentVolumeClaim volumes and a
// StatefulSet's volumeClaimTemplates (sized by their storage request), each mounted where
// the first container that mounts it does. Volumes no container mounts are left out.
func (b *builder) volumes() []v1alpha1.Volume {
	ps := &b.p.template.Spec
	var out []v1alpha1.Volume
	names, mounts := map[string]bool{}, map[string]bool{}
	add := func(name string, size *resource.Quantity) {
		mp := mountPath(ps, name)
		n := dnsLabel(name)
		if mp == "" || !pathpkg.IsAbs(mp) || n == "" || names[n] || mounts[pathpkg.Clean(mp)] {
			return
		}
		names[n], mounts[pathpkg.Clean(mp)] = true, true
		out = append(out, v1alpha1.Volume{Name: n, MountPath: mp, Size: size})
	}
	for _, v := range ps.Volumes {
		if v.PersistentVolumeClaim != nil {
			add(v.Name, nil)
		}
	}
	for _, c := range b.p.claims {
		var size *resource.Quantity
		if q, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; ok && q.Sign() > 0 {
			q = q.DeepCopy()
			size = &q
		}
		add(c.Name, size)
	}
	return out
}

// mountPath is where the first container (regular, then init) mounts the named volume.
func mountPath(ps *corev1.PodSpec, volume string) string {
	for _, group := range [][]corev1.Container{ps.Containers, ps.InitContainers} {
		for _, c := range group {
			for _, m := range c.VolumeMounts {
				if m.Name == volume {
					return m.MountPath
				}
			}
		}
	}
	return ""
}
