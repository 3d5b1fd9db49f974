package v1alpha1

import "strings"

// A sysctl is namespaced when the kernel keeps one value per namespace: a container that sets
// it changes its own namespace's value, never the host's. These are the classes the OCI
// runtimes accept in a container's spec:
//   - net.*, per network namespace. A workload with its own network namespace (any workload
//     without host network, which floors at vm anyway) sets them on its own stack; the few
//     host-wide net.* sysctls are missing (net.core.netdev_max_backlog) or read-only
//     (net.core.rmem_max) in any network namespace but the host's, so setting one fails
//     instead of reaching the host;
//   - kernel.shm*, kernel.msg* and kernel.sem* (kernel.sem and kernel.sem_next_id), per IPC
//     namespace (System V shared memory, message queues and semaphores);
//   - fs.mqueue.*, per IPC namespace (POSIX message queues).
//
// Every other sysctl is host-wide: setting it needs a kernel of the workload's own, so it goes
// to traits.kernel.sysctls. The default assessment policy's own-kernel rule writes the same
// classes in CEL (a test in internal/assess checks that the two agree).
var namespacedSysctlPrefixes = []string{"net.", "kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue."}

// SysctlNamespaced reports whether the sysctl name is namespaced, so a workload may set it
// under a shared kernel without touching the host's. Both separators are understood:
// "net.core.somaxconn" and "net/core/somaxconn" are the same sysctl.
func SysctlNamespaced(name string) bool {
	name = strings.ReplaceAll(name, "/", ".")
	for _, p := range namespacedSysctlPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// SysctlNeedsOwnKernel reports whether setting the sysctl name needs a kernel of the
// workload's own, that is, whether it is host-wide and not namespaced.
func SysctlNeedsOwnKernel(name string) bool { return !SysctlNamespaced(name) }
