package v1alpha1

import "testing"

// TestSysctlNeedsOwnKernel: namespaced sysctls (net.*, the IPC namespace's kernel.shm*,
// kernel.msg*, kernel.sem* and fs.mqueue.*) do not need a kernel of the workload's own;
// every other sysctl does, whatever its separator.
func TestSysctlNeedsOwnKernel(t *testing.T) {
	tests := []struct {
		name string
		own  bool
	}{
		{"net.core.somaxconn", false},
		{"net.ipv4.ip_forward", false},
		{"net.ipv4.tcp_syncookies", false},
		{"net.ipv6.conf.all.disable_ipv6", false},
		{"net/ipv4/conf/eno2.100/rp_filter", false},
		{"kernel.shmmax", false},
		{"kernel.shm_rmid_forced", false},
		{"kernel.msgmnb", false},
		{"kernel.sem", false},
		{"kernel/sem", false},
		{"fs.mqueue.msg_max", false},

		{"vm.swappiness", true},
		{"vm.max_map_count", true},
		{"kernel.core_pattern", true},
		{"kernel.pid_max", true},
		{"kernel.hostname", true},
		{"fs.file-max", true},
		{"fs.mqueue", true},
		{"net", true},
		{"network.x", true},
		{"", true},
	}
	for _, tt := range tests {
		if got := SysctlNeedsOwnKernel(tt.name); got != tt.own {
			t.Errorf("SysctlNeedsOwnKernel(%q) = %v, want %v", tt.name, got, tt.own)
		}
		if got := SysctlNamespaced(tt.name); got == tt.own {
			t.Errorf("SysctlNamespaced(%q) = %v, want %v", tt.name, got, !tt.own)
		}
	}
}
