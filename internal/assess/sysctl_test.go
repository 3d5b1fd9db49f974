package assess

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

// reason is a rule's name and the detail its message ends with, in parentheses.
type reason struct{ rule, detail string }

// checkReasons assesses a workload with the default policy and checks its tier, and the rule
// and detail of every reason, in order.
func checkReasons(t *testing.T, w *v1alpha1.Workload, tier v1alpha1.Tier, want []reason) {
	t.Helper()
	d, err := Default().Assess(w)
	if err != nil {
		t.Fatal(err)
	}
	messages := map[string]string{}
	for _, r := range Default().rules {
		messages[r.Name] = r.Message
	}
	var got []reason
	for _, r := range d.Reasons {
		detail, _ := strings.CutPrefix(r.Message, messages[r.Rule])
		detail = strings.TrimSuffix(strings.TrimPrefix(detail, " ("), ")")
		got = append(got, reason{r.Rule, detail})
	}
	if d.Tier != tier || !slices.Equal(got, want) {
		t.Errorf("tier %s by %q, want %s by %q", d.Tier, got, tier, want)
	}
}

// sysctlTable are sysctls of every class: namespaced (net.*, the IPC namespace's kernel.shm*,
// kernel.msg*, kernel.sem*, fs.mqueue.*) and host-wide, with both separators.
var sysctlTable = []string{
	"net.core.somaxconn", "net.ipv4.ip_forward", "net.ipv4.tcp_keepalive_time", "net.ipv4.ip_local_port_range",
	"net.ipv6.conf.all.disable_ipv6", "net.netfilter.nf_conntrack_max", "net/ipv4/conf/eno2.100/rp_filter",
	"kernel.shmmax", "kernel.shmall", "kernel.shm_rmid_forced", "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
	"kernel.sem", "kernel.sem_next_id", "kernel/sem", "fs.mqueue.msg_max", "fs.mqueue.queues_max",
	"vm.swappiness", "vm.max_map_count", "vm.overcommit_memory", "kernel.core_pattern", "kernel.pid_max",
	"kernel.hostname", "kernel.randomize_va_space", "fs.file-max", "fs.inotify.max_user_watches",
	"fs.mqueue", "net", "netfilter.x", "kernel.shm", "user.max_user_namespaces", "kernel/core_pattern",
}

// TestSysctlsAgree: the own-kernel rule and v1alpha1.SysctlNeedsOwnKernel (which importers use
// to fill traits.kernel.sysctls) judge every sysctl alike, so a namespaced sysctl written by
// hand into traits.kernel.sysctls raises nothing either.
func TestSysctlsAgree(t *testing.T) {
	namespaced := 0
	for _, name := range append(sysctlTable, randomSysctls(1000)...) {
		var want []reason
		tier := v1alpha1.TierContainer
		if v1alpha1.SysctlNeedsOwnKernel(name) {
			want, tier = []reason{{"own-kernel", name}}, v1alpha1.TierVM
		} else {
			namespaced++
		}
		t.Run(name, func(t *testing.T) {
			checkReasons(t, workload(func(s *v1alpha1.WorkloadSpec) { s.Traits.Kernel.Sysctls = []string{name} }), tier, want)
		})
	}
	if namespaced == 0 || namespaced == len(sysctlTable)+1000 {
		t.Errorf("%d sysctls are namespaced: the table must hold both kinds", namespaced)
	}
}

// randomSysctls makes n sysctl-like names near the classes' edges, with a fixed seed: a root
// ("kernel", "fs", "kernelx", ...), a second part ("shm", "sem_next_id", "mqueue", ...),
// maybe a third, joined by either separator.
func randomSysctls(n int) []string {
	roots := []string{"net", "kernel", "fs", "vm", "kernelx"}
	seconds := []string{"shm", "shmmax", "msg", "msgmax", "sem", "sem_next_id", "se", "mqueue", "mqueuex",
		"core", "ipv4", "somaxconn", "core_pattern", ""}
	thirds := []string{"msg_max", "eth0.100", "rp_filter", "max"}
	r := rand.New(rand.NewPCG(19, 7))
	names := make([]string, n)
	for i := range names {
		sep := []string{".", "/"}[r.IntN(2)]
		parts := []string{roots[r.IntN(len(roots))], seconds[r.IntN(len(seconds))]}
		if r.IntN(2) == 0 {
			parts = append(parts, thirds[r.IntN(len(thirds))])
		}
		names[i] = strings.Join(parts, sep)
	}
	return names
}
