package kube

import (
	pathpkg "path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"strata.dev/strata/api/v1alpha1"
)

// Annotations the importer reads or writes beyond those of package v1alpha1.
const (
	// AnnotationIsolation on an object or its pod template sets spec.isolation.
	AnnotationIsolation = "strata.dev/isolation"
	// AnnotationRuntimeClass keeps a runtimeClassName that says nothing strata understands.
	AnnotationRuntimeClass = "strata.dev/runtime-class"
	// AnnotationPerNode marks a workload imported from a DaemonSet: one replica per node.
	AnnotationPerNode = "strata.dev/per-node"
)

// containerSecurity is the security context of one container of any sort (regular, init or
// ephemeral), its name, mounts, and where the container is.
type containerSecurity struct {
	name   string
	sc     *corev1.SecurityContext
	mounts []corev1.VolumeMount
	at     path
}

// allContainers lists every container of the pod spec at spec: traits come from all of them.
func allContainers(ps *corev1.PodSpec, spec path) []containerSecurity {
	var out []containerSecurity
	for i := range ps.InitContainers {
		c := &ps.InitContainers[i]
		out = append(out, containerSecurity{c.Name, c.SecurityContext, c.VolumeMounts, spec.to("initContainers", i)})
	}
	for i := range ps.Containers {
		c := &ps.Containers[i]
		out = append(out, containerSecurity{c.Name, c.SecurityContext, c.VolumeMounts, spec.to("containers", i)})
	}
	for i := range ps.EphemeralContainers {
		c := &ps.EphemeralContainers[i].EphemeralContainerCommon
		out = append(out, containerSecurity{c.Name, c.SecurityContext, c.VolumeMounts, spec.to("ephemeralContainers", i)})
	}
	return out
}

// traits infers the traits the pod spec shows: privileges, capabilities, host access,
// kernel needs and the guest OS. The annotations are read by annotations.
func (b *builder) traits(t *v1alpha1.Traits) {
	ps := &b.p.template.Spec
	caps := map[string]bool{}
	for _, c := range allContainers(ps, b.spec) {
		if c.sc == nil {
			continue
		}
		if c.sc.Privileged != nil && *c.sc.Privileged {
			t.Privileged = true
		}
		if c.sc.Capabilities == nil {
			continue
		}
		for i, raw := range c.sc.Capabilities.Add {
			name := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(string(raw))), "CAP_")
			if !isCapability(name) {
				b.errs = append(b.errs, b.o.errorf(c.at.to("securityContext", "capabilities", "add", i),
					"write a Linux capability name such as NET_ADMIN or CAP_NET_ADMIN",
					"invalid capability %q", string(raw)))
				continue
			}
			caps[name] = true
		}
	}
	t.Capabilities = sortedKeys(caps)

	if ps.HostNetwork {
		t.HostAccess = append(t.HostAccess, v1alpha1.HostNetwork)
	}
	if ps.HostPID {
		t.HostAccess = append(t.HostAccess, v1alpha1.HostPID)
	}
	if ps.HostIPC {
		t.HostAccess = append(t.HostAccess, v1alpha1.HostIPC)
	}
	t.HostPaths = b.hostPaths(ps)
	t.Unconfined = b.unconfined(ps)

	t.Kernel.Sysctls = b.sysctls(ps)
	if windows(ps) {
		t.OS = v1alpha1.OSWindows
	}
}

// isCapability accepts a capability name without its CAP_ prefix: upper case letters, digits
// and underscores.
func isCapability(c string) bool {
	if c == "" {
		return false
	}
	for _, r := range c {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// sysctls returns the pod's sysctls that are not safe in a container: they need a kernel of
// the workload's own. Names written with '/' separators are given in the dotted form.
func (b *builder) sysctls(ps *corev1.PodSpec) []string {
	if ps.SecurityContext == nil {
		return nil
	}
	need := map[string]bool{}
	for i, s := range ps.SecurityContext.Sysctls {
		name := dotted(strings.TrimSpace(s.Name))
		if name == "" || strings.ContainsAny(name, " \t\r\n") {
			b.errs = append(b.errs, b.o.errorf(b.spec.to("securityContext", "sysctls", i, "name"),
				"write a sysctl name such as net.core.somaxconn", "invalid sysctl name %q", s.Name))
			continue
		}
		if v1alpha1.SysctlNeedsOwnKernel(name) {
			need[name] = true
			continue
		}
		b.note(b.spec.to("securityContext", "sysctls", i), "sysctl %s=%s is not carried over: it is namespaced and "+
			"needs no kernel of the workload's own; set it in the container at start if the workload needs it", name, s.Value)
	}
	return sortedKeys(need)
}

// dotted converts a sysctl name written with '/' separators (net/ipv4/conf/eth0.100/rp_filter)
// to the dotted form (net.ipv4.conf.eth0/100.rp_filter) by swapping the two characters.
func dotted(name string) string {
	if !strings.Contains(name, "/") {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '/':
			return '.'
		case '.':
			return '/'
		}
		return r
	}, name)
}

// osLabels are the node labels that select an operating system.
var osLabels = []string{"kubernetes.io/os", "beta.kubernetes.io/os"}

// windows reports whether the pod can only run on Windows nodes: spec.os.name, a node
// selector, or a required node affinity every term of which asks for windows.
func windows(ps *corev1.PodSpec) bool {
	if ps.OS != nil && strings.EqualFold(string(ps.OS.Name), "windows") {
		return true
	}
	for _, l := range osLabels {
		if strings.EqualFold(ps.NodeSelector[l], "windows") {
			return true
		}
	}
	if ps.Affinity == nil || ps.Affinity.NodeAffinity == nil {
		return false
	}
	req := ps.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if req == nil || len(req.NodeSelectorTerms) == 0 {
		return false
	}
	for _, term := range req.NodeSelectorTerms {
		if !termWindows(term) {
			return false
		}
	}
	return true
}

// termWindows reports whether a node selector term matches Windows nodes only.
func termWindows(term corev1.NodeSelectorTerm) bool {
	for _, e := range term.MatchExpressions {
		if !slices.Contains(osLabels, e.Key) || e.Operator != corev1.NodeSelectorOpIn || len(e.Values) == 0 {
			continue
		}
		if !slices.ContainsFunc(e.Values, func(v string) bool { return !strings.EqualFold(v, "windows") }) {
			return true
		}
	}
	return false
}

// isolationOf maps a runtime class to the isolation it gives: gVisor is the sandbox tier,
// Kata Containers run each pod in a VM. It returns "" for any other class.
func isolationOf(runtimeClass string) v1alpha1.Isolation {
	rc := strings.ToLower(runtimeClass)
	switch {
	case rc == "gvisor" || rc == "runsc":
		return v1alpha1.Isolation(v1alpha1.TierSandbox)
	case strings.HasPrefix(rc, "kata"):
		return v1alpha1.Isolation(v1alpha1.TierVM)
	}
	return ""
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// hostPaths lists the pod's hostPath volumes as host paths, each once: read-only when every
// mount of it in every container is read-only.
func (b *builder) hostPaths(ps *corev1.PodSpec) []v1alpha1.HostPath {
	var out []v1alpha1.HostPath
	index := map[string]int{}
	containers := allContainers(ps, b.spec)
	for i, v := range ps.Volumes {
		if v.HostPath == nil {
			continue
		}
		p := strings.TrimSpace(v.HostPath.Path)
		if !pathpkg.IsAbs(p) || strings.ContainsRune(p, 0) {
			b.errs = append(b.errs, b.o.errorf(b.spec.to("volumes", i, "hostPath", "path"),
				"name the host file or directory by its absolute path, such as /var/log",
				"hostPath %q is not an absolute path", v.HostPath.Path))
			continue
		}
		p = pathpkg.Clean(p)
		readOnly := true
		for _, c := range containers {
			for _, m := range c.mounts {
				if m.Name == v.Name && !m.ReadOnly {
					readOnly = false
				}
			}
		}
		if j, ok := index[p]; ok {
			out[j].ReadOnly = out[j].ReadOnly && readOnly
			continue
		}
		index[p] = len(out)
		out = append(out, v1alpha1.HostPath{Path: p, ReadOnly: readOnly})
	}
	return out
}

// Legacy annotations that set seccomp and AppArmor profiles, from before the security
// context had fields for them.
const (
	seccompPodAnnotation        = "seccomp.security.alpha.kubernetes.io/pod"
	seccompContainerAnnotation  = "container.seccomp.security.alpha.kubernetes.io/"
	apparmorContainerAnnotation = "container.apparmor.security.beta.kubernetes.io/"
)

// unconfined lists the protections the pod turns off: an Unconfined seccomp or AppArmor
// profile (in the security contexts or the legacy annotations), privilege escalation
// allowed explicitly, or an unmasked /proc.
func (b *builder) unconfined(ps *corev1.PodSpec) []v1alpha1.Unconfinement {
	off := map[v1alpha1.Unconfinement]bool{}
	if sc := ps.SecurityContext; sc != nil {
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined {
			off[v1alpha1.UnconfinedSeccomp] = true
		}
		if sc.AppArmorProfile != nil && sc.AppArmorProfile.Type == corev1.AppArmorProfileTypeUnconfined {
			off[v1alpha1.UnconfinedAppArmor] = true
		}
	}
	for _, c := range allContainers(ps, b.spec) {
		sc := c.sc
		if sc == nil {
			continue
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined {
			off[v1alpha1.UnconfinedSeccomp] = true
		}
		if sc.AppArmorProfile != nil && sc.AppArmorProfile.Type == corev1.AppArmorProfileTypeUnconfined {
			off[v1alpha1.UnconfinedAppArmor] = true
		}
		if sc.AllowPrivilegeEscalation != nil && *sc.AllowPrivilegeEscalation {
			off[v1alpha1.UnconfinedPrivilegeEscalation] = true
		}
		if sc.ProcMount != nil && *sc.ProcMount == corev1.UnmaskedProcMount {
			off[v1alpha1.UnconfinedProcMount] = true
		}
	}
	// The annotations are the pod's: on a Pod its own, on a controller its template's.
	for k, v := range b.p.template.Annotations {
		if !strings.EqualFold(strings.TrimSpace(v), "unconfined") {
			continue
		}
		switch {
		case k == seccompPodAnnotation, strings.HasPrefix(k, seccompContainerAnnotation):
			off[v1alpha1.UnconfinedSeccomp] = true
		case strings.HasPrefix(k, apparmorContainerAnnotation):
			off[v1alpha1.UnconfinedAppArmor] = true
		}
	}
	var out []v1alpha1.Unconfinement
	for _, u := range []v1alpha1.Unconfinement{v1alpha1.UnconfinedSeccomp, v1alpha1.UnconfinedAppArmor,
		v1alpha1.UnconfinedPrivilegeEscalation, v1alpha1.UnconfinedProcMount} {
		if off[u] {
			out = append(out, u)
		}
	}
	return out
}
