package kube

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"strata.dev/strata/internal/inventory"
)

// note records what of the object does not carry over, placed at p in the object.
func (b *builder) note(p path, format string, args ...any) {
	n := inventory.Note{Path: b.o.at.to(p...).String(), Message: fmt.Sprintf(format, args...)}
	if at := locate(b.o.doc.Node, p); at != nil && at.Line > 0 {
		n.Line = at.Line
	}
	b.notes = append(b.notes, n)
}

// explainLoss notes every part of the object that the workload does not carry: containers
// that do not run, volumes, variables and probes strata cannot give the workload, schedules
// and placement constraints.
func (b *builder) explainLoss() {
	ps := &b.p.template.Spec
	if b.p.other {
		b.note(nil, "a %s is imported from its pod template: the %s's strategy and other fields outside "+
			"spec.template and spec.replicas are not carried over", b.o.doc.Kind, b.o.doc.Kind)
	}
	mainName := ps.Containers[0].Name
	for i, c := range ps.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			b.note(b.spec.to("initContainers", i), "sidecar container %q is not run: strata runs the first container, %q; "+
				"its resources and privileges are counted in the workload", c.Name, mainName)
			continue
		}
		b.note(b.spec.to("initContainers", i), "init container %q is not run: strata starts the first container, %q, "+
			"alone; do its work in that container's entrypoint", c.Name, mainName)
	}
	for i, c := range ps.Containers[1:] {
		b.note(b.spec.to("containers", i+1), "container %q is not run: strata runs the first container, %q; "+
			"its ports, resources and privileges are counted in the workload", c.Name, mainName)
	}
	for i, c := range ps.EphemeralContainers {
		b.note(b.spec.to("ephemeralContainers", i), "ephemeral container %q is not run: debug containers are started by hand", c.Name)
	}
	b.explainVolumes()
	b.explainSecurity()
	b.explainEnv(&ps.Containers[0])
	b.explainProbes(&ps.Containers[0])
	if b.p.schedule != "" {
		b.note(b.p.tmplAt[:len(b.p.tmplAt)-len(path{"jobTemplate", "spec", "template"})].to("schedule"),
			"the schedule %q is not carried over: the workload runs once when it is applied; start it on a schedule from outside",
			b.p.schedule)
	}
	if c := b.p.completions; c != nil && *c > 1 {
		b.note(b.p.tmplAt[:len(b.p.tmplAt)-1].to("completions"),
			"completions: %d is not carried over: each replica runs to its end once", *c)
	}
	if l := ps.Containers[0].Lifecycle; l != nil {
		for _, h := range []struct {
			name string
			set  bool
		}{{"postStart", l.PostStart != nil}, {"preStop", l.PreStop != nil}} {
			if h.set {
				b.note(b.spec.to("containers", 0, "lifecycle", h.name), "the %s hook is not carried over: "+
					"do its work in the container's entrypoint or its stop signal handler", h.name)
			}
		}
	}
	placement := []struct {
		field string
		set   bool
	}{
		{"nodeSelector", slices.ContainsFunc(mapKeys(ps.NodeSelector), func(k string) bool { return !slices.Contains(osLabels, k) })},
		{"nodeName", ps.NodeName != ""},
		{"affinity", ps.Affinity != nil && !windows(ps)},
		{"tolerations", len(ps.Tolerations) > 0},
		{"topologySpreadConstraints", len(ps.TopologySpreadConstraints) > 0},
	}
	for _, p := range placement {
		if p.set {
			b.note(b.spec.to(p.field), "%s is not carried over: strata places workloads by their tier and its own "+
				"spread rules (spec.placement)", p.field)
		}
	}
}

// explainVolumes notes the volumes the workload does not carry: all but hostPath volumes
// (traits.hostPaths) and the persistent volumes that become strata volumes.
func (b *builder) explainVolumes() {
	ps := &b.p.template.Spec
	for i, v := range ps.Volumes {
		at := b.spec.to("volumes", i)
		switch src := volumeSource(v.VolumeSource); {
		case v.HostPath != nil:
		case v.PersistentVolumeClaim != nil:
			b.note(at, "volume %q becomes a new, empty strata volume: the data of claim %q is not copied",
				v.Name, v.PersistentVolumeClaim.ClaimName)
		case v.EmptyDir != nil:
			b.note(at, "volume %q (emptyDir) is not carried over: the container writes to its own filesystem", v.Name)
		case v.ConfigMap != nil, v.Secret != nil, v.Projected != nil, v.DownwardAPI != nil:
			b.note(at, "volume %q (%s) is not carried over: put its files in the image or in a strata volume", v.Name, src)
		default:
			b.note(at, "volume %q (%s) is not carried over: strata has no such volume; copy its data into a strata volume",
				v.Name, src)
		}
	}
}

// explainSecurity notes the pod's and the main container's settings of who the process is
// and what it may do, which a workload does not carry, and the pod's API and registry
// credentials and host names.
func (b *builder) explainSecurity() {
	ps := &b.p.template.Spec
	if sc := ps.SecurityContext; sc != nil {
		b.noteSecurity(b.spec.to("securityContext"), []string{"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups"},
			[]bool{sc.RunAsUser != nil, sc.RunAsGroup != nil, sc.RunAsNonRoot != nil, sc.FSGroup != nil, len(sc.SupplementalGroups) > 0})
	}
	if sc := ps.Containers[0].SecurityContext; sc != nil {
		b.noteSecurity(b.spec.to("containers", 0, "securityContext"),
			[]string{"runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem", "capabilities.drop"},
			[]bool{sc.RunAsUser != nil, sc.RunAsGroup != nil, sc.RunAsNonRoot != nil,
				sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem, sc.Capabilities != nil && len(sc.Capabilities.Drop) > 0})
	}
	if len(ps.ImagePullSecrets) > 0 {
		b.note(b.spec.to("imagePullSecrets"), "imagePullSecrets are not carried over: log the host in to the registry "+
			"(or copy the image) before the workload starts")
	}
	if len(ps.HostAliases) > 0 {
		b.note(b.spec.to("hostAliases"), "hostAliases are not carried over: the workload resolves names through its segment's DNS")
	}
	if sa := ps.ServiceAccountName; sa != "" && sa != "default" && (ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken) {
		b.note(b.spec.to("serviceAccountName"), "service account %q is not carried over: the workload gets no Kubernetes API credentials", sa)
	}
}

// noteSecurity notes the fields of a security context that are set.
func (b *builder) noteSecurity(at path, fields []string, set []bool) {
	var given []string
	for i, f := range fields {
		if set[i] {
			given = append(given, f)
		}
	}
	if len(given) == 0 {
		return
	}
	b.note(at, "%s not carried over: the container runs as its image's user, with the runtime's default "+
		"capabilities and a writable root filesystem", strings.Join(given, ", ")+map[bool]string{true: " is", false: " are"}[len(given) == 1])
}

// volumeSource names the kind of a volume by its field (configMap, nfs, csi, ...).
func volumeSource(vs corev1.VolumeSource) string {
	v := reflect.ValueOf(vs)
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return "no source"
}

// explainEnv notes the main container's variables whose values come from elsewhere.
func (b *builder) explainEnv(c *corev1.Container) {
	at := b.spec.to("containers", 0)
	for i, e := range c.Env {
		if e.ValueFrom == nil || e.Name == "" {
			continue
		}
		from := "field"
		switch vf := e.ValueFrom; {
		case vf.SecretKeyRef != nil:
			from = fmt.Sprintf("key %q of secret %q", vf.SecretKeyRef.Key, vf.SecretKeyRef.Name)
		case vf.ConfigMapKeyRef != nil:
			from = fmt.Sprintf("key %q of config map %q", vf.ConfigMapKeyRef.Key, vf.ConfigMapKeyRef.Name)
		case vf.FieldRef != nil:
			from = "the pod's field " + vf.FieldRef.FieldPath
		case vf.ResourceFieldRef != nil:
			from = "the container's " + vf.ResourceFieldRef.Resource
		}
		b.note(at.to("env", i), "variable %s is left out: its value comes from %s; give it a value in spec.env", e.Name, from)
	}
	for i, e := range c.EnvFrom {
		what := "a source"
		switch {
		case e.ConfigMapRef != nil:
			what = fmt.Sprintf("config map %q", e.ConfigMapRef.Name)
		case e.SecretRef != nil:
			what = fmt.Sprintf("secret %q", e.SecretRef.Name)
		}
		b.note(at.to("envFrom", i), "the variables of %s are left out; give them values in spec.env", what)
	}
}

// explainProbes notes the main container's probes that the health check does not carry.
func (b *builder) explainProbes(c *corev1.Container) {
	at := b.spec.to("containers", 0)
	used := "livenessProbe"
	if c.LivenessProbe == nil {
		used = "readinessProbe"
	}
	probes := []struct {
		field string
		p     *corev1.Probe
	}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}}
	for _, p := range probes {
		switch {
		case p.p == nil:
		case p.field != used:
			b.note(at.to(p.field), "the %s is not carried over: strata checks health with the %s alone", p.field, used)
		case p.p.GRPC != nil:
			b.note(at.to(p.field, "grpc"), "the gRPC %s is not carried over: strata checks health over HTTP, TCP or a command", p.field)
		case p.p.HTTPGet != nil && p.p.HTTPGet.Scheme == corev1.URISchemeHTTPS:
			b.note(at.to(p.field, "httpGet", "scheme"), "the %s asks over HTTPS; strata's health check asks over plain HTTP: "+
				"if the port serves HTTPS alone, check it with tcp instead", p.field)
		}
	}
}

func mapKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
