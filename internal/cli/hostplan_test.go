package cli

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/api/wire"
)

// A daemon's answers, as it writes them: a host with two node VMs (one per tenant's class,
// the acme one with two replicas of a sandbox-tier workload beside a container), a
// container kept on the host's kernel by placement.nodeVM never, a workload VM, a
// single-tenant container on the host's kernel, and a shop whose second replica the nodevm
// driver is still starting.
const (
	hostTwoNodes = `{"apiVersion": "v1", "kind": "HostList", "resourceVersion": "88", "items": [
 {"apiVersion": "strata.dev/v1alpha1", "kind": "Host", "metadata": {"name": "rack2-n07"},
  "status": {"ready": true, "lastHeartbeatTime": "2026-12-07T13:59:50Z", "heartbeatSeconds": 10, "version": "0.9.0",
   "arch": "amd64", "accelerator": "kvm", "capacity": {"cpu": "16", "memory": "64Gi"},
   "allocated": {"cpu": "4250m", "memory": "9472Mi"}, "instances": 7, "tiers": ["container", "sandbox", "vm"], "drivers": []}}]}`
	nodesTwo = `{"apiVersion": "v1", "kind": "NodeVMList", "resourceVersion": "88", "items": [
 {"name": "nodevm-9c41d0e2b7aa", "class": "globex/internal/internal", "shape": {"cpu": "2", "memory": "4Gi"},
  "usage": {"cpu": "500m", "memory": "1Gi"}, "replicas": [{"id": "shop-b-0", "workload": "shop-b"}],
  "state": "running", "startedAt": "2026-12-07T12:41:03Z"},
 {"name": "nodevm-0f3a55c81e20", "class": "acme/internal/internal", "shapeName": "medium", "shape": {"cpu": "2", "memory": "4Gi"},
  "usage": {"cpu": "1500m", "memory": "1536Mi"},
  "replicas": [{"id": "plugins-0", "workload": "plugins"}, {"id": "plugins-1", "workload": "plugins"}, {"id": "shop-a-0", "workload": "shop-a"}],
  "state": "running", "startedAt": "2026-12-07T12:40:11Z"}]}`
	workloadsMixed = `{"apiVersion": "v1", "kind": "WorkloadList", "resourceVersion": "88", "items": [
 {"apiVersion": "strata.dev/v1alpha1", "kind": "Workload", "metadata": {"name": "shop-a", "labels": {"strata.dev/tenant": "acme"}},
  "spec": {"image": "registry.acme.example/shop:4.2", "replicas": 2, "resources": {"cpu": "500m", "memory": "512Mi"}, "traits": {"tenancy": "multi"}},
  "status": {"phase": "Running", "tier": "container",
   "nodeVM": {"run": true, "class": "acme/internal/internal", "reason": "policy: tenancy multi"},
   "instances": [{"id": "shop-a-0", "tier": "container", "driver": "nodevm", "state": "running", "restarts": 0},
                 {"id": "shop-a-1", "tier": "container", "driver": "nodevm", "state": "creating", "restarts": 0}]}},
 {"apiVersion": "strata.dev/v1alpha1", "kind": "Workload", "metadata": {"name": "plugins", "labels": {"strata.dev/tenant": "acme"}},
  "spec": {"image": "registry.acme.example/plugins:1.0", "replicas": 2, "resources": {"cpu": "500m", "memory": "512Mi"}, "traits": {"tenancy": "multi", "trust": "untrusted"}},
  "status": {"phase": "Running", "tier": "sandbox",
   "instances": [{"id": "plugins-0", "tier": "sandbox", "driver": "nodevm", "state": "running", "restarts": 0},
                 {"id": "plugins-1", "tier": "sandbox", "driver": "nodevm", "state": "running", "restarts": 1}]}},
 {"apiVersion": "strata.dev/v1alpha1", "kind": "Workload", "metadata": {"name": "shop-b", "labels": {"strata.dev/tenant": "globex"}},
  "spec": {"image": "registry.globex.example/shop:7", "resources": {"cpu": "500m", "memory": "1Gi"}, "traits": {"tenancy": "multi"}},
  "status": {"phase": "Running", "tier": "container",
   "instances": [{"id": "shop-b-0", "tier": "container", "driver": "nodevm", "state": "running", "restarts": 0}]}},
 {"apiVersion": "strata.dev/v1alpha1", "kind": "Workload", "metadata": {"name": "cache", "labels": {"strata.dev/tenant": "acme"}},
  "spec": {"image": "docker.io/library/redis:7", "resources": {"cpu": "250m", "memory": "256Mi"}, "traits": {"tenancy": "multi"}, "placement": {"nodeVM": "never"}},
  "status": {"phase": "Running", "tier": "container",
   "instances": [{"id": "cache-0", "tier": "container", "driver": "containerd", "state": "running", "pid": 4121, "restarts": 0}]}},
 {"apiVersion": "strata.dev/v1alpha1", "kind": "Workload", "metadata": {"name": "ledger"},
  "spec": {"isolation": "vm", "resources": {"cpu": "1", "memory": "2Gi"}},
  "status": {"phase": "Running", "tier": "vm",
   "instances": [{"id": "ledger-0", "tier": "vm", "driver": "qemu", "state": "running", "pid": 5230, "restarts": 0}]}},
 {"apiVersion": "strata.dev/v1alpha1", "kind": "Workload", "metadata": {"name": "web"},
  "spec": {"image": "docker.io/library/nginx:1.27", "replicas": 2, "resources": {"cpu": "250m", "memory": "128Mi"}},
  "status": {"phase": "Running", "tier": "container",
   "instances": [{"id": "web-0", "tier": "container", "driver": "containerd", "state": "running", "pid": 3980, "restarts": 0},
                 {"id": "web-1", "tier": "container", "driver": "containerd", "state": "running", "pid": 3991, "restarts": 0}]}}]}`

	// A daemon with --node-vms off: the shops the policy sends into node VMs run nowhere.
	hostNoNodes = `{"apiVersion": "v1", "kind": "HostList", "resourceVersion": "12", "items": [
 {"apiVersion": "strata.dev/v1alpha1", "kind": "Host", "metadata": {"name": "edge-01"},
  "status": {"ready": true, "lastHeartbeatTime": "2026-12-07T13:59:55Z", "heartbeatSeconds": 10, "version": "0.9.0",
   "arch": "arm64", "capacity": {"cpu": "4", "memory": "8Gi"}, "allocated": {"cpu": "500m", "memory": "384Mi"},
   "instances": 2, "tiers": ["container"], "drivers": []}}]}`
	workloadsNoNodes = `{"apiVersion": "v1", "kind": "WorkloadList", "resourceVersion": "12", "items": [
 {"apiVersion": "strata.dev/v1alpha1", "kind": "Workload", "metadata": {"name": "web"},
  "spec": {"image": "docker.io/library/nginx:1.27", "replicas": 2, "resources": {"cpu": "250m", "memory": "192Mi"}},
  "status": {"phase": "Running", "tier": "container",
   "instances": [{"id": "web-0", "tier": "container", "driver": "containerd", "state": "running", "pid": 811, "restarts": 0},
                 {"id": "web-1", "tier": "container", "driver": "containerd", "state": "running", "pid": 812, "restarts": 0}]}},
 {"apiVersion": "strata.dev/v1alpha1", "kind": "Workload", "metadata": {"name": "shop-a", "labels": {"strata.dev/tenant": "acme"}},
  "spec": {"image": "registry.acme.example/shop:4.2", "resources": {"cpu": "500m", "memory": "512Mi"}, "traits": {"tenancy": "multi"}},
  "status": {"phase": "Failed", "tier": "container",
   "nodeVM": {"run": true, "class": "acme/internal/internal", "reason": "policy: tenancy multi"},
   "conditions": [{"type": "Ready", "status": "False", "reason": "NoNodeVMs", "lastTransitionTime": "2026-12-07T13:58:00Z",
     "message": "its replicas must run in node VMs of class acme/internal/internal (policy: tenancy multi), and node VMs are off (--node-vms=off): start strata serve with --node-vms auto, or set placement.nodeVM: never"}]}}]}`
)

// serveDaemon answers the lists of plan --host on a unix socket like a daemon: the bodies
// by path; a path without one is a 404 Status, as a daemon that does not know it answers.
func serveDaemon(t *testing.T, bodies map[string]string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "strata.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	daemon := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		body, ok := bodies[strings.TrimPrefix(r.URL.Path, wire.Prefix)]
		if !ok || r.Method != http.MethodGet {
			rw.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(rw).Encode(wire.Status{APIVersion: "v1", Kind: "Status", Code: http.StatusNotFound,
				Reason: wire.ReasonNotFound, Message: "unknown resource " + r.URL.Path})
			return
		}
		_, _ = rw.Write([]byte(body))
	}))
	daemon.Listener = l
	daemon.Start()
	t.Cleanup(daemon.Close)
	return sock
}

// TestPlanHostGolden: plan --host prints the daemon's own placement in the planner's
// table, JSON and YAML, for a daemon with two node VMs and for one without (--node-vms off,
// and one from before node VMs, which does not know the nodes path).
func TestPlanHostGolden(t *testing.T) {
	two := serveDaemon(t, map[string]string{"hosts": hostTwoNodes, "nodes": nodesTwo, "workloads": workloadsMixed})
	none := serveDaemon(t, map[string]string{"hosts": hostNoNodes, "nodes": `{"items": []}`, "workloads": workloadsNoNodes})
	older := serveDaemon(t, map[string]string{"hosts": hostNoNodes, "workloads": workloadsNoNodes})
	t.Chdir("../..")
	for _, tc := range []struct {
		golden, sock string
		args         []string
	}{
		{"plan-host.txt", two, nil},
		{"plan-host.json", two, []string{"-o", "json"}},
		{"plan-host.yaml", two, []string{"-o", "yaml"}},
		{"plan-host-none.txt", none, nil},
		{"plan-host-none.json", none, []string{"-o", "json"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			code, stdout, stderr := run(t, "", append([]string{"--socket", tc.sock, "plan", "--host"}, tc.args...)...)
			if code != ExitOK || stderr != "" {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr)
			}
			compareGolden(t, tc.golden, stdout)
		})
	}
	// A daemon that lists no node VMs at all prints what one with none does.
	code, stdout, stderr := run(t, "", "--socket", older, "plan", "--host")
	if want, _ := os.ReadFile(filepath.Join("internal", "cli", "testdata", "plan-host-none.txt")); code != ExitOK || stdout != string(want) {
		t.Errorf("a daemon without the nodes path: exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, stderr, stdout, want)
	}
}

// TestPlanHostShape: the JSON of plan --host is a PlacementPlan a script reads like any
// other: the node VMs on the one host, each replica once, in its node VM or on the host,
// the replica being started and the failed shop unplaced, and --fail-unplaced exits 1.
func TestPlanHostShape(t *testing.T) {
	sock := serveDaemon(t, map[string]string{"hosts": hostTwoNodes, "nodes": nodesTwo, "workloads": workloadsMixed})
	code, stdout, stderr := run(t, "", "--socket", sock, "plan", "--host", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	plan := decodePlan(t, stdout)
	where := map[string]string{}
	for _, p := range plan.Placements {
		key := p.Workload + "-" + strconv.Itoa(int(p.Replica))
		if _, dup := where[key]; dup {
			t.Errorf("%s placed twice", key)
		}
		where[key] = p.Host + "/" + p.Node + " " + string(p.Tier)
	}
	want := map[string]string{
		"shop-a-0": "rack2-n07/nodevm-0f3a55c81e20 container", "plugins-0": "rack2-n07/nodevm-0f3a55c81e20 sandbox",
		"plugins-1": "rack2-n07/nodevm-0f3a55c81e20 sandbox", "shop-b-0": "rack2-n07/nodevm-9c41d0e2b7aa container",
		"cache-0": "rack2-n07/ container", "ledger-0": "rack2-n07/ vm", "web-0": "rack2-n07/ container", "web-1": "rack2-n07/ container",
	}
	if len(where) != len(want) {
		t.Errorf("placements %v, want %v", where, want)
	}
	for k, v := range want {
		if where[k] != v {
			t.Errorf("%s placed at %q, want %q", k, where[k], v)
		}
	}
	if len(plan.Unplaced) != 1 || plan.Unplaced[0].Workload != "shop-a" || plan.Unplaced[0].Replica != 1 {
		t.Errorf("unplaced %+v, want shop-a #1 (being started)", plan.Unplaced)
	}
	if len(plan.Nodes) != 2 || plan.Nodes[0].Utilization == nil || plan.Nodes[0].Utilization.CPU != 0.75 || plan.Nodes[0].Shape != "medium (2 CPU, 4Gi)" ||
		plan.Nodes[1].Shape != "2 CPU, 4Gi" {
		t.Errorf("nodes %+v, want nodevm-0f3a55c81e20 first at 75%% CPU of medium (2 CPU, 4Gi), and the other's shape without a name", plan.Nodes)
	}
	if len(plan.Hosts) != 1 || plan.Hosts[0].Nodes != 2 || plan.Hosts[0].VMs != 1 {
		t.Errorf("hosts %+v, want rack2-n07 with 2 node VMs and 1 VM", plan.Hosts)
	}
	if code, _, stderr := run(t, "", "--socket", sock, "plan", "--host", "--fail-unplaced"); code != ExitFailure || !strings.Contains(stderr, "1 replica runs nowhere") {
		t.Errorf("--fail-unplaced: exit %d, stderr %q; want 1 and the count", code, stderr)
	}
	// --host takes no planning input.
	if code, _, stderr := run(t, "", "--socket", sock, "plan", "--host", "--fleet", "examples/fleet/fleet.yaml"); code == ExitOK || !strings.Contains(stderr, "host") {
		t.Errorf("--host with --fleet: exit %d, stderr %q; want refused", code, stderr)
	}
	var v1 v1alpha1.PlacementPlan
	if err := json.Unmarshal([]byte(stdout), &v1); err != nil || v1.Summary.Nodes != 2 || v1.Summary.HostsUsed != 1 || v1.Summary.Placed != 8 {
		t.Errorf("summary %+v (%v)", v1.Summary, err)
	}
}
