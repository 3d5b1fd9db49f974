package compose

import (
	"strconv"
	"strings"

	"strata.dev/strata/api/v1alpha1"
)

// traits reads what a service asks of its host: privileged, cap_add, network_mode, pid, ipc,
// userns_mode, uts, cgroup, devices, security_opt, sysctls and platform.
func (b *builder) traits() {
	t := &b.w.Spec.Traits
	if n, p := b.get("privileged"); n != nil {
		if v, ok := b.r.boolean(n, p); ok && v {
			t.Privileged = true
			b.from("spec.traits.privileged", n, p)
		}
	}
	b.capabilities()
	for _, mode := range []struct {
		key    string
		access v1alpha1.HostAccess
	}{
		{"network_mode", v1alpha1.HostNetwork}, {"pid", v1alpha1.HostPID}, {"ipc", v1alpha1.HostIPC},
		{"userns_mode", v1alpha1.HostUser}, {"uts", v1alpha1.HostUTS}, {"cgroup", v1alpha1.HostCgroup},
	} {
		n, p := b.get(mode.key)
		s, at := b.r.strAt(n, p)
		switch {
		case at == nil:
		case s == "host":
			b.host[mode.access] = true
			b.from("spec.traits.hostAccess", at, p)
		case strings.HasPrefix(s, "service:") || strings.HasPrefix(s, "container:"):
			b.note(at, p, "%s %s (sharing the namespace of another container) is not carried over: the workload gets a namespace of its own", mode.key, s)
		case mode.key == "network_mode" && s == "none":
			b.note(at, p, "network_mode none is not carried over: the workload joins the project's segment")
		}
	}
	if n, p := b.get("devices"); n != nil {
		items, _ := b.r.list(n, p)
		for _, item := range items {
			if !isNull(b.r.resolve(item)) {
				b.host[v1alpha1.HostDevices] = true
				break
			}
		}
	}
	b.securityOpt()
	b.sysctls()
	if n, p := b.get("platform"); n != nil {
		if s, ok := b.r.str(n, p); ok {
			os, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "/")
			if os == "windows" {
				t.OS = v1alpha1.OSWindows
			}
		}
	}
}

// capabilities reads cap_add: names in upper case without the CAP_ prefix, each once.
func (b *builder) capabilities() {
	n, p := b.get("cap_add")
	items, _ := b.r.list(n, p)
	t := &b.w.Spec.Traits
	for i, item := range items {
		ip := p.Index(i)
		s, at := b.r.strAt(item, ip)
		if at == nil {
			continue
		}
		c := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "CAP_")
		if !isCapability(c) {
			b.r.errorf(at, ip, "write a Linux capability name such as NET_ADMIN", "invalid capability %q", s)
			continue
		}
		if b.seen["capability:"+c] {
			continue
		}
		b.seen["capability:"+c] = true
		b.from("spec.traits.capabilities["+strconv.Itoa(len(t.Capabilities))+"]", at, ip)
		t.Capabilities = append(t.Capabilities, c)
	}
}

// isCapability accepts a capability name without its CAP_ prefix: upper case letters, digits
// and underscores (ALL counts).
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

// sysctls reads sysctls (a mapping or a list of name=value) and keeps the names of those
// that need a kernel of their own.
func (b *builder) sysctls() {
	n, p := b.get("sysctls")
	k := &b.w.Spec.Traits.Kernel
	for _, kv := range b.r.pairs(n, p) {
		name := strings.TrimSpace(kv.key)
		if name == "" || strings.ContainsAny(name, " \t\n\r") {
			b.r.errorf(kv.node, p.Key(kv.key), "write a sysctl name such as net.core.somaxconn", "invalid sysctl name %q", kv.key)
			continue
		}
		if b.seen["sysctl:"+name] {
			continue
		}
		if !v1alpha1.SysctlNeedsOwnKernel(strings.ReplaceAll(name, "/", ".")) {
			b.seen["sysctl:"+name] = true
			b.note(kv.node, p.Key(kv.key), "the namespaced sysctl %s=%s is not carried over: strata does not set sysctls, the workload sees the kernel's default",
				name, strings.TrimSpace(kv.value))
			continue
		}
		b.seen["sysctl:"+name] = true
		b.from("spec.traits.kernel.sysctls["+strconv.Itoa(len(k.Sysctls))+"]", kv.node, p.Key(kv.key))
		k.Sysctls = append(k.Sysctls, name)
	}
}

// securityOpt reads security_opt: an unconfined seccomp or AppArmor profile, privileges that
// may be gained (no-new-privileges:false) and unmasked system paths (systempaths=unconfined)
// become traits.unconfined. Options that confine more, or differently, are noted.
func (b *builder) securityOpt() {
	n, p := b.get("security_opt")
	items, _ := b.r.list(n, p)
	off := map[v1alpha1.Unconfinement]bool{}
	for i, item := range items {
		ip := p.Index(i)
		s, at := b.r.strAt(item, ip)
		if at == nil {
			continue
		}
		s = strings.TrimSpace(s)
		key, value, _ := strings.Cut(s, "=")
		if k, v, ok := strings.Cut(s, ":"); ok && (!strings.Contains(s, "=") || len(k) < len(key)) {
			key, value = k, v
		}
		switch key, value = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(value); {
		case key == "seccomp" && value == "unconfined":
			off[v1alpha1.UnconfinedSeccomp] = true
		case key == "apparmor" && value == "unconfined":
			off[v1alpha1.UnconfinedAppArmor] = true
		case key == "no-new-privileges" && strings.EqualFold(value, "false"):
			off[v1alpha1.UnconfinedPrivilegeEscalation] = true
		case key == "systempaths" && value == "unconfined":
			off[v1alpha1.UnconfinedProcMount] = true
		case key == "no-new-privileges" && (value == "" || strings.EqualFold(value, "true")):
			// strata's default
		case key == "seccomp" || key == "apparmor":
			b.note(at, ip, "the %s profile %s is not carried over: the runtime's default profile applies", key, value)
		case key == "label":
			b.note(at, ip, "the SELinux option %s is not carried over: the runtime's default labelling applies", s)
		default:
			b.note(at, ip, "the security option %s is not carried over", s)
		}
	}
	for _, u := range []v1alpha1.Unconfinement{v1alpha1.UnconfinedSeccomp, v1alpha1.UnconfinedAppArmor,
		v1alpha1.UnconfinedPrivilegeEscalation, v1alpha1.UnconfinedProcMount} {
		if off[u] {
			b.w.Spec.Traits.Unconfined = append(b.w.Spec.Traits.Unconfined, u)
		}
	}
}

// runtime reads runtime: gVisor's runsc asks for the sandbox tier, a Kata runtime for vm.
func (b *builder) runtime() {
	n, p := b.get("runtime")
	s, at := b.r.strAt(n, p)
	if at == nil {
		return
	}
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "runsc" || s == "gvisor" || strings.HasPrefix(s, "io.containerd.runsc."):
		b.w.Spec.Isolation = v1alpha1.Isolation(v1alpha1.TierSandbox)
	case strings.Contains(s, "kata"):
		b.w.Spec.Isolation = v1alpha1.Isolation(v1alpha1.TierVM)
	default:
		return
	}
	b.from("spec.isolation", at, p)
}
