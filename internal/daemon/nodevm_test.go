package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tenants are two workloads of a multi-tenant host: a customer's cache, kept on the host's
// kernel by placement.nodeVM never although the policy sends multi-tenant classes into node
// VMs, and the host's own regulated vault, which the policy sends into node VMs.
const tenants = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: cache, labels: {strata.dev/tenant: acme}}
spec:
  image: localhost/busybox:1
  command: ["sleep", "3600"]
  resources: {cpu: 50m, memory: 16Mi}
  traits: {tenancy: multi}
  placement: {nodeVM: never}
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: vault, labels: {strata.dev/tenant: shop}}
spec:
  image: localhost/busybox:1
  command: ["sleep", "3600"]
  resources: {cpu: 50m, memory: 16Mi}
  traits: {data: regulated}
`

// TestDaemonNodeVMDecision: the real daemon stores, on apply, where each workload's replicas
// run, and `strata describe workload` says it with the reason; placement.nodeVM never on a
// class the policy sends into node VMs is applied without --force, with its warning.
func TestDaemonNodeVMDecision(t *testing.T) {
	e := newE2E(t)
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	file := filepath.Join(e.dir, "tenants.yaml")
	if err := os.WriteFile(file, []byte(tenants), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", file)

	if nv := e.workload("vault").Status.NodeVM; nv == nil || !nv.Run || nv.Class != "shop/internal/regulated" || nv.Reason != "policy: data regulated" {
		t.Errorf("vault: status.nodeVM %+v, want node VMs of shop/internal/regulated by the policy", nv)
	}
	if nv := e.workload("cache").Status.NodeVM; nv == nil || nv.Run || nv.Reason != "placement.nodeVM never" || nv.Warning == "" {
		t.Errorf("cache: status.nodeVM %+v, want the host's kernel with a warning", nv)
	}
	for name, want := range map[string][]string{
		"vault": {"Runs on:", "node VMs of class shop/internal/regulated (policy: data regulated)"},
		"cache": {"Runs on:", "the host's kernel, class acme/internal/internal (placement.nodeVM never)",
			"Warning:", "but the policy sends it into node VMs (policy: tenancy multi)"},
	} {
		desc := e.must("describe", "workload", name)
		for _, w := range want {
			if !strings.Contains(desc, w) {
				t.Errorf("describe workload %s lacks %q:\n%s", name, w, desc)
			}
		}
	}
	e.must("delete", "-f", file)
}
