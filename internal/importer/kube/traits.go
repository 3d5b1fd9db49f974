package kube

import (
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
// ephemeral) and where the container is.
type containerSecurity struct {
	sc *corev1.SecurityContext
	at path
}

// allContainers lists every container of the pod spec at spec: traits come from all of them.
func allContainers(ps *corev1.PodSpec, spec path) []containerSecurity {
	var out []containerSecurity
	for i := range ps.InitContainers {
		out = append(out, containerSecurity{ps.InitContainers[i].SecurityContext, spec.to("initContainers", i)})
	}
	for i := range ps.Containers {
		out = append(out, containerSecurity{ps.Containers[i].SecurityContext, spec.to("containers", i)})
	}
	for i := range ps.EphemeralContainers {
		out = append(out, containerSecurity{ps.EphemeralContainers[i].SecurityContext, spec.to("ephemeralContainers", i)})
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
	if slices.ContainsFunc(ps.Volumes, func(v corev1.Volume) bool { return v.HostPath != nil }) {
		t.HostAccess = append(t.HostAccess, v1alpha1.HostPaths)
	}

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
		}
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
