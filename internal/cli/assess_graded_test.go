package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

// gradedEstate is a set of strata Workloads that ask for host access of every grade, as a
// user writes them by hand.
const gradedEstate = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: web}
spec:
  image: docker.io/library/nginx:1.27
  traits:
    hostPaths:
    - {path: nginx.conf, readOnly: true, inProject: true}
    - {path: html, inProject: true}
    - {path: /etc/localtime, readOnly: true}
    kernel: {sysctls: [net.core.somaxconn, net/ipv4/tcp_fin_timeout]}
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: static}
spec:
  image: docker.io/library/nginx:1.27
  traits:
    hostPaths:
    - {path: /srv/www, readOnly: true}
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: agent}
spec:
  image: localhost/ops/agent:2.3
  traits:
    hostPaths:
    - {path: /var/run/docker.sock, readOnly: true}
    - {path: /var/lib/agent}
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: builder}
spec:
  image: localhost/ci/builder:1.0
  traits:
    unconfined: [seccomp, apparmor]
    hostAccess: [uts]
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: search}
spec:
  image: localhost/search/engine:8.1
  traits:
    kernel: {sysctls: [vm.max_map_count, kernel.shmmax]}
`

// TestAssessGradedHostAccess: host paths, sysctls, unconfinement and host namespaces written
// into strata documents are graded by `strata assess`, each with its rule and what matched.
func TestAssessGradedHostAccess(t *testing.T) {
	file := filepath.Join(t.TempDir(), "estate.yaml")
	if err := os.WriteFile(file, []byte(gradedEstate), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "", "assess", "-f", file, "-o", "json")
	if code != ExitOK || stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	var report v1alpha1.AssessmentReport
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		tier    v1alpha1.Tier
		rules   []string
		mention string
	}{
		"web":     {v1alpha1.TierContainer, nil, ""},
		"static":  {v1alpha1.TierSandbox, []string{"host-paths-read-only"}, "(/srv/www)"},
		"agent":   {v1alpha1.TierVM, []string{"host-paths"}, "(sensitive: /var/run/docker.sock; writable outside the project: /var/lib/agent)"},
		"builder": {v1alpha1.TierSandbox, []string{"host-namespaces", "unconfined"}, "(no seccomp filter, no AppArmor profile)"},
		"search":  {v1alpha1.TierVM, []string{"own-kernel"}, "(vm.max_map_count)"},
	}
	if len(report.Items) != len(want) {
		t.Fatalf("%d items, want %d:\n%s", len(report.Items), len(want), stdout)
	}
	for _, it := range report.Items {
		w := want[it.Name]
		var rules, messages []string
		for _, r := range it.Reasons {
			rules = append(rules, r.Rule)
			messages = append(messages, r.Message)
		}
		if it.Tier != w.tier || !slices.Equal(rules, w.rules) {
			t.Errorf("%s: tier %s by %v, want %s by %v", it.Name, it.Tier, rules, w.tier, w.rules)
		}
		if w.mention != "" && !strings.Contains(strings.Join(messages, "\n"), w.mention) {
			t.Errorf("%s: no reason says %q:\n%s", it.Name, w.mention, strings.Join(messages, "\n"))
		}
	}
}
