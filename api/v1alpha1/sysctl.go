package v1alpha1

// namespacedSysctls are the sysctls that are namespaced and safe: a container may set them
// under a shared kernel without touching the host's. Every other sysctl a workload needs
// goes to traits.kernel.sysctls, and so needs a kernel of its own.
var namespacedSysctls = map[string]bool{
	"kernel.shm_rmid_forced":              true,
	"net.ipv4.ip_local_port_range":        true,
	"net.ipv4.tcp_syncookies":             true,
	"net.ipv4.ping_group_range":           true,
	"net.ipv4.ip_unprivileged_port_start": true,
	"net.ipv4.ip_local_reserved_ports":    true,
	"net.ipv4.tcp_keepalive_time":         true,
	"net.ipv4.tcp_fin_timeout":            true,
	"net.ipv4.tcp_keepalive_intvl":        true,
	"net.ipv4.tcp_keepalive_probes":       true,
}

// SysctlNeedsOwnKernel reports whether setting the sysctl name needs a kernel of the
// workload's own, that is, whether it is not one of the namespaced, safe sysctls.
func SysctlNeedsOwnKernel(name string) bool { return !namespacedSysctls[name] }
