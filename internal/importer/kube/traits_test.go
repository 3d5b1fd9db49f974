package kube

import (
	"reflect"
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

// traitCase imports one manifest and compares one aspect of the workload.
type traitCase struct {
	name     string
	manifest string
	got      func(w *v1alpha1.Workload) any
	want     any
}

func runTraitCases(t *testing.T, cases []traitCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := importOne(t, tc.manifest)
			if got := tc.got(w); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func privileged(w *v1alpha1.Workload) any   { return w.Spec.Traits.Privileged }
func capabilities(w *v1alpha1.Workload) any { return w.Spec.Traits.Capabilities }
func hostAccess(w *v1alpha1.Workload) any   { return w.Spec.Traits.HostAccess }
func sysctls(w *v1alpha1.Workload) any      { return w.Spec.Traits.Kernel.Sysctls }
func osFamily(w *v1alpha1.Workload) any     { return w.Spec.Traits.OS }
func isolation(w *v1alpha1.Workload) any    { return w.Spec.Isolation }
func annotations(w *v1alpha1.Workload) any  { return w.Metadata.Annotations }
func trust(w *v1alpha1.Workload) any        { return w.Spec.Traits.Trust }
func data(w *v1alpha1.Workload) any         { return w.Spec.Traits.Data }
func tenancy(w *v1alpha1.Workload) any      { return w.Spec.Traits.Tenancy }
func tenant(w *v1alpha1.Workload) any       { return w.Metadata.Labels[v1alpha1.LabelTenant] }

func TestPrivileged(t *testing.T) {
	runTraitCases(t, []traitCase{
		{"none", deployment(container("")), privileged, false},
		{"false", deployment(container("securityContext: {privileged: false}")), privileged, false},
		{"regular container", deployment(container("securityContext: {privileged: true}")), privileged, true},
		{"second container", deployment(container("") + "- name: b\n  image: b:1\n  securityContext: {privileged: true}\n"), privileged, true},
		{"init container", deployment(container("") + "initContainers:\n- name: init\n  image: i:1\n  securityContext: {privileged: true}\n"), privileged, true},
		{"ephemeral container", pod(container("") + "ephemeralContainers:\n- name: debug\n  image: d:1\n  securityContext: {privileged: true}\n"), privileged, true},
	})
}

func TestCapabilities(t *testing.T) {
	runTraitCases(t, []traitCase{
		{"none", deployment(container("")), capabilities, []string(nil)},
		{"drop only", deployment(container("securityContext: {capabilities: {drop: [ALL]}}")), capabilities, []string(nil)},
		{"upper case, CAP_ stripped, sorted, once", deployment(container(
			"securityContext: {capabilities: {add: [net_admin, CAP_SYS_TIME, NET_ADMIN, cap_net_raw]}}")),
			capabilities, []string{"NET_ADMIN", "NET_RAW", "SYS_TIME"}},
		{"init and ephemeral containers", pod(container("") +
			"initContainers:\n- name: init\n  image: i:1\n  securityContext: {capabilities: {add: [SYS_ADMIN]}}\n" +
			"ephemeralContainers:\n- name: debug\n  image: d:1\n  securityContext: {capabilities: {add: [SYS_PTRACE]}}\n"),
			capabilities, []string{"SYS_ADMIN", "SYS_PTRACE"}},
	})
}

func TestHostAccess(t *testing.T) {
	runTraitCases(t, []traitCase{
		{"none", deployment(container("")), hostAccess, []v1alpha1.HostAccess(nil)},
		{"network", deployment("hostNetwork: true\n" + container("")), hostAccess, []v1alpha1.HostAccess{v1alpha1.HostNetwork}},
		{"pid", deployment("hostPID: true\n" + container("")), hostAccess, []v1alpha1.HostAccess{v1alpha1.HostPID}},
		{"ipc", deployment("hostIPC: true\n" + container("")), hostAccess, []v1alpha1.HostAccess{v1alpha1.HostIPC}},
		{"false flags", deployment("hostNetwork: false\nhostPID: false\n" + container("")), hostAccess, []v1alpha1.HostAccess(nil)},
		{"hostPath volumes are host paths, not host access", deployment(container("") + "volumes:\n- name: logs\n  hostPath: {path: /var/log}\n"),
			hostAccess, []v1alpha1.HostAccess(nil)},
		{"emptyDir is not host access", deployment(container("") + "volumes:\n- name: tmp\n  emptyDir: {}\n"),
			hostAccess, []v1alpha1.HostAccess(nil)},
		{"all, in a fixed order", deployment("hostIPC: true\nhostPID: true\nhostNetwork: true\n" + container("") +
			"volumes:\n- name: root\n  hostPath: {path: /}\n"),
			hostAccess, []v1alpha1.HostAccess{v1alpha1.HostNetwork, v1alpha1.HostPID, v1alpha1.HostIPC}},
	})
}

func hostPaths(w *v1alpha1.Workload) any  { return w.Spec.Traits.HostPaths }
func unconfined(w *v1alpha1.Workload) any { return w.Spec.Traits.Unconfined }

// TestHostPaths grades hostPath volumes by their mounts: a path is read-only only when
// every mount of it, in every container of any sort, is.
func TestHostPaths(t *testing.T) {
	vols := "volumes:\n- name: conf\n  hostPath: {path: /etc/app//conf.d/, type: Directory}\n" +
		"- name: sock\n  hostPath: {path: /run/containerd/containerd.sock, type: Socket}\n" +
		"- name: conf-again\n  hostPath: {path: /etc/app/conf.d}\n" +
		"- name: unused\n  hostPath: {path: /srv/unused}\n"
	runTraitCases(t, []traitCase{
		{"none", deployment(container("")), hostPaths, []v1alpha1.HostPath(nil)},
		{"cleaned, each once, read-only only where every mount is", deployment(container(
			"volumeMounts:\n- {name: conf, mountPath: /conf, readOnly: true}\n- {name: sock, mountPath: /run/c.sock}\n") +
			"- name: b\n  image: b:1\n  volumeMounts: [{name: conf-again, mountPath: /c, readOnly: true}]\n" +
			"initContainers:\n- name: init\n  image: i:1\n  volumeMounts: [{name: sock, mountPath: /s, readOnly: true}]\n" + vols),
			hostPaths, []v1alpha1.HostPath{{Path: "/etc/app/conf.d", ReadOnly: true},
				{Path: "/run/containerd/containerd.sock"}, {Path: "/srv/unused", ReadOnly: true}}},
		{"a writable mount in an init container counts", deployment(container(
			"volumeMounts: [{name: conf, mountPath: /conf, readOnly: true}]") +
			"initContainers:\n- name: init\n  image: i:1\n  volumeMounts: [{name: conf, mountPath: /conf}]\n" +
			"volumes:\n- name: conf\n  hostPath: {path: /etc/app}\n"),
			hostPaths, []v1alpha1.HostPath{{Path: "/etc/app"}}},
	})
	_, errs := importString(t, "h.yaml", deployment(container("")+"volumes:\n- name: rel\n  hostPath: {path: data/dir}\n"))
	want := `h.yaml:13:26: spec.template.spec.volumes[0].hostPath.path: hostPath "data/dir" is not an absolute path ` +
		`(name the host file or directory by its absolute path, such as /var/log)`
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("errors %q, want %q", errs, want)
	}
}

// TestUnconfined finds the protections a pod turns off in its security contexts and in the
// legacy annotations.
func TestUnconfined(t *testing.T) {
	none := []v1alpha1.Unconfinement(nil)
	podWith := func(annotations string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\n" + indent(4, annotations) +
			"spec:\n" + indent(2, container(""))
	}
	tmplWith := func(annotations string) string {
		return "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  template:\n    metadata:\n" +
			"      annotations:\n" + indent(8, annotations) + "    spec:\n" + indent(6, container(""))
	}
	runTraitCases(t, []traitCase{
		{"none", deployment(container("")), unconfined, none},
		{"profiles that confine", deployment("securityContext: {seccompProfile: {type: RuntimeDefault}, appArmorProfile: {type: RuntimeDefault}}\n" +
			container("securityContext: {allowPrivilegeEscalation: false, procMount: Default, seccompProfile: {type: Localhost, localhostProfile: p.json}}")),
			unconfined, none},
		{"the pod's seccomp profile", deployment("securityContext: {seccompProfile: {type: Unconfined}}\n" + container("")),
			unconfined, []v1alpha1.Unconfinement{v1alpha1.UnconfinedSeccomp}},
		{"a container's AppArmor profile", deployment(container("") +
			"- name: b\n  image: b:1\n  securityContext: {appArmorProfile: {type: Unconfined}}\n"),
			unconfined, []v1alpha1.Unconfinement{v1alpha1.UnconfinedAppArmor}},
		{"the pod's AppArmor profile", deployment("securityContext: {appArmorProfile: {type: Unconfined}}\n" + container("")),
			unconfined, []v1alpha1.Unconfinement{v1alpha1.UnconfinedAppArmor}},
		{"escalation and unmasked /proc, written out", deployment(container("") +
			"initContainers:\n- name: init\n  image: i:1\n  securityContext: {allowPrivilegeEscalation: true}\n" +
			"ephemeralContainers:\n- name: debug\n  image: d:1\n  securityContext: {procMount: Unmasked}\n"),
			unconfined, []v1alpha1.Unconfinement{v1alpha1.UnconfinedPrivilegeEscalation, v1alpha1.UnconfinedProcMount}},
		{"legacy pod annotation", podWith("seccomp.security.alpha.kubernetes.io/pod: unconfined\n"),
			unconfined, []v1alpha1.Unconfinement{v1alpha1.UnconfinedSeccomp}},
		{"legacy container annotations on a template", tmplWith(
			"container.seccomp.security.alpha.kubernetes.io/app: unconfined\ncontainer.apparmor.security.beta.kubernetes.io/app: unconfined\n"),
			unconfined, []v1alpha1.Unconfinement{v1alpha1.UnconfinedSeccomp, v1alpha1.UnconfinedAppArmor}},
		{"legacy annotations that confine", podWith(
			"seccomp.security.alpha.kubernetes.io/pod: runtime/default\ncontainer.apparmor.security.beta.kubernetes.io/app: runtime/default\n"),
			unconfined, none},
		{"hostUsers: true is the default", deployment("hostUsers: true\n" + container("")), unconfined, none},
	})
}

func TestSysctls(t *testing.T) {
	sc := func(names ...string) string {
		s := "securityContext:\n  sysctls:\n"
		for _, n := range names {
			s += "  - {name: " + n + ", value: \"1\"}\n"
		}
		return deployment(s + container(""))
	}
	runTraitCases(t, []traitCase{
		{"none", deployment(container("")), sysctls, []string(nil)},
		{"safe ones need no kernel", sc("kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
			"net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports",
			"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
			"net.ipv4.tcp_keepalive_probes"), sysctls, []string(nil)},
		{"other namespaced ones need no kernel", sc("net.core.somaxconn", "kernel.msgmax", "kernel.sem", "fs.mqueue.msg_max"),
			sysctls, []string(nil)},
		{"host-wide ones need their own kernel", sc("net.core.somaxconn", "vm.max_map_count", "kernel.panic", "net.ipv4.tcp_syncookies"),
			sysctls, []string{"kernel.panic", "vm.max_map_count"}},
		{"slash separators", sc("net/ipv4/tcp_syncookies", "net/ipv4/conf/eth0.100/rp_filter", "kernel/yama/ptrace_scope"),
			sysctls, []string{"kernel.yama.ptrace_scope"}},
	})
}

func TestOS(t *testing.T) {
	affinity := func(terms string) string {
		return deployment("affinity:\n  nodeAffinity:\n    requiredDuringSchedulingIgnoredDuringExecution:\n      nodeSelectorTerms:\n" +
			indent(6, terms) + container(""))
	}
	runTraitCases(t, []traitCase{
		{"default linux", deployment(container("")), osFamily, v1alpha1.OSLinux},
		{"nodeSelector windows", deployment("nodeSelector: {kubernetes.io/os: windows}\n" + container("")), osFamily, v1alpha1.OSWindows},
		{"beta label", deployment("nodeSelector: {beta.kubernetes.io/os: windows}\n" + container("")), osFamily, v1alpha1.OSWindows},
		{"nodeSelector linux", deployment("nodeSelector: {kubernetes.io/os: linux}\n" + container("")), osFamily, v1alpha1.OSLinux},
		{"other selector", deployment("nodeSelector: {disk: windows}\n" + container("")), osFamily, v1alpha1.OSLinux},
		{"spec.os", deployment("os: {name: windows}\n" + container("")), osFamily, v1alpha1.OSWindows},
		{"required affinity", affinity("- matchExpressions:\n  - {key: kubernetes.io/os, operator: In, values: [windows]}\n"),
			osFamily, v1alpha1.OSWindows},
		{"affinity with a linux term", affinity("- matchExpressions:\n  - {key: kubernetes.io/os, operator: In, values: [windows]}\n" +
			"- matchExpressions:\n  - {key: kubernetes.io/os, operator: In, values: [linux]}\n"), osFamily, v1alpha1.OSLinux},
		{"affinity allowing linux", affinity("- matchExpressions:\n  - {key: kubernetes.io/os, operator: In, values: [windows, linux]}\n"),
			osFamily, v1alpha1.OSLinux},
		{"affinity NotIn windows", affinity("- matchExpressions:\n  - {key: kubernetes.io/os, operator: NotIn, values: [windows]}\n"),
			osFamily, v1alpha1.OSLinux},
		{"preferred affinity does not require", deployment("affinity:\n  nodeAffinity:\n    preferredDuringSchedulingIgnoredDuringExecution:\n" +
			"    - weight: 1\n      preference:\n        matchExpressions:\n        - {key: kubernetes.io/os, operator: In, values: [windows]}\n" +
			container("")), osFamily, v1alpha1.OSLinux},
	})
}

func TestRuntimeClass(t *testing.T) {
	rc := func(name string) string { return deployment("runtimeClassName: " + name + "\n" + container("")) }
	auto := v1alpha1.IsolationAuto
	sandbox := v1alpha1.Isolation(v1alpha1.TierSandbox)
	vm := v1alpha1.Isolation(v1alpha1.TierVM)
	runTraitCases(t, []traitCase{
		{"none", deployment(container("")), isolation, auto},
		{"gvisor", rc("gvisor"), isolation, sandbox},
		{"runsc", rc("runsc"), isolation, sandbox},
		{"kata", rc("kata"), isolation, vm},
		{"kata-qemu", rc("kata-qemu"), isolation, vm},
		{"kata-fc", rc("kata-fc"), isolation, vm},
		{"other is auto", rc("nvidia"), isolation, auto},
		{"other is kept as an annotation", rc("nvidia"), annotations, map[string]string{AnnotationRuntimeClass: "nvidia"}},
		{"known ones are not annotated", rc("gvisor"), annotations, map[string]string(nil)},
		{"isolation annotation wins", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations: {strata.dev/isolation: vm}\n" +
			"spec:\n  template:\n    spec:\n      runtimeClassName: gvisor\n" + indent(6, container("")), isolation, vm},
	})
}

// annotated is a Deployment with annotations on the object and on its pod template.
func annotated(object, template string) string {
	s := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
	if object != "" {
		s += "  annotations: {" + object + "}\n"
	}
	s += "spec:\n  template:\n"
	if template != "" {
		s += "    metadata:\n      annotations: {" + template + "}\n"
	}
	return s + "    spec:\n" + indent(6, container(""))
}

func TestTraitAnnotations(t *testing.T) {
	runTraitCases(t, []traitCase{
		{"trust default", annotated("", ""), trust, v1alpha1.TrustInternal},
		{"trust on object", annotated("strata.dev/trust: untrusted", ""), trust, v1alpha1.TrustUntrusted},
		{"trust on template", annotated("", "strata.dev/trust: trusted"), trust, v1alpha1.TrustTrusted},
		{"template wins", annotated("strata.dev/trust: trusted", "strata.dev/trust: untrusted"), trust, v1alpha1.TrustUntrusted},
		{"data regulated", annotated("strata.dev/data: regulated", ""), data, v1alpha1.DataRegulated},
		{"data, case and spaces", annotated("strata.dev/data: ' Confidential '", ""), data, v1alpha1.DataConfidential},
		{"data public on template", annotated("strata.dev/data: regulated", "strata.dev/data: public"), data, v1alpha1.DataPublic},
		{"tenancy multi", annotated("strata.dev/tenancy: multi", ""), tenancy, v1alpha1.TenancyMulti},
		{"tenancy default", annotated("", ""), tenancy, v1alpha1.TenancySingle},
		{"isolation", annotated("", "strata.dev/isolation: sandbox"), isolation, v1alpha1.Isolation(v1alpha1.TierSandbox)},
		{"isolation auto", annotated("strata.dev/isolation: auto", ""), isolation, v1alpha1.IsolationAuto},
		{"Pod annotations", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {strata.dev/trust: untrusted}\nspec:\n" +
			indent(2, container("")), trust, v1alpha1.TrustUntrusted},
		{"CronJob template", "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n" +
			"      template:\n        metadata: {annotations: {strata.dev/data: confidential}}\n        spec:\n" + indent(10, container("")),
			data, v1alpha1.DataConfidential},
	})
}

func TestTenant(t *testing.T) {
	meta := func(m string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n" + indent(2, m) +
			"spec:\n  template:\n    spec:\n" + indent(6, container(""))
	}
	runTraitCases(t, []traitCase{
		{"none", meta(""), tenant, ""},
		{"default namespace is no tenant", meta("namespace: default"), tenant, ""},
		{"namespace", meta("namespace: shop"), tenant, "shop"},
		{"label", meta("namespace: shop\nlabels: {strata.dev/tenant: acme}"), tenant, "acme"},
		{"annotation", meta("annotations: {strata.dev/tenant: acme}"), tenant, "acme"},
		{"annotation wins over label", meta("labels: {strata.dev/tenant: a}\nannotations: {strata.dev/tenant: b}"), tenant, "b"},
		{"template wins", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {strata.dev/tenant: a}\n" +
			"spec:\n  template:\n    metadata: {labels: {strata.dev/tenant: c}}\n    spec:\n" + indent(6, container("")), tenant, "c"},
		{"only the tenant label is kept", meta("namespace: shop\nlabels: {app: web, tier: front}"),
			func(w *v1alpha1.Workload) any { return w.Metadata.Labels }, map[string]string{v1alpha1.LabelTenant: "shop"}},
	})
}
