package daemon_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/nodevm"
)

// tenants are the workloads of a multi-tenant host: two customers' shops (multi-tenant
// classes, which the built-in policy sends into node VMs; shop-a with a volume), a
// customer's cache kept on the host's kernel by placement.nodeVM never, and the host's own
// single-tenant web, which stays on the host's kernel.
const tenants = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: shop-a, labels: {strata.dev/tenant: acme}}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
  resources: {cpu: 50m, memory: 16Mi}
  traits: {tenancy: multi}
  volumes: [{name: orders, mountPath: /orders}]
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: shop-b, labels: {strata.dev/tenant: globex}}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
  resources: {cpu: 100m, memory: 32Mi}
  traits: {tenancy: multi}
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: cache, labels: {strata.dev/tenant: acme}}
spec:
  image: localhost/busybox:1
  command: ["sleep", "100000"]
  resources: {cpu: 50m, memory: 16Mi}
  traits: {tenancy: multi}
  placement: {nodeVM: never}
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: web, labels: {strata.dev/tenant: shop}}
spec:
  image: localhost/busybox:1
  command: ["sleep", "100000"]
  resources: {cpu: 50m, memory: 16Mi}
`

// TestDaemonNodeVMs: the real daemon runs two tenants' container workloads in two node
// VMs, one per class, under QEMU (TCG here), and the other workloads on the host's kernel;
// get nodes lists both node VMs, describe says where each replica runs and why, after
// a kill -9 a new daemon adopts every replica where it runs, starting nothing twice, a
// replica whose process is killed starts again in its node VM, the replicas have usage
// metrics, and a replica's snapshot is taken and restored in its node VM. shop-a's volume
// is its host directory: what the replica writes there is on the host, and the replica
// reads it back after the daemon's restart and after its own.
func TestDaemonNodeVMs(t *testing.T) {
	e := newE2E(t)
	kdir := vmEnv(t, e)
	e.extraArgs = []string{"--guest-kernel-dir", kdir}
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	file := filepath.Join(e.dir, "tenants.yaml")
	if err := os.WriteFile(file, []byte(tenants), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", file)
	applied := time.Now()

	if nv := e.workload("shop-a").Status.NodeVM; nv == nil || !nv.Run || nv.Class != "acme/internal/internal" || nv.Reason != "policy: tenancy multi" {
		t.Errorf("shop-a: status.nodeVM %+v, want node VMs of acme/internal/internal by the policy", nv)
	}
	if nv := e.workload("cache").Status.NodeVM; nv == nil || nv.Run || nv.Reason != "placement.nodeVM never" || nv.Warning == "" {
		t.Errorf("cache: status.nodeVM %+v, want the host's kernel with a warning", nv)
	}
	// Two node VMs boot under TCG on a shared machine: allow minutes.
	drivers := map[string]string{"shop-a": nodevm.Name, "shop-b": nodevm.Name, "cache": "containerd", "web": "containerd"}
	started := map[string]time.Time{}
	e.eventually("every workload runs", 5*time.Minute, func() error {
		for name, drv := range drivers {
			if _, err := e.running(name, 1); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			in := e.workload(name).Status.Instances[0]
			if in.Driver != drv {
				return fmt.Errorf("%s runs on driver %q, want %q", name, in.Driver, drv)
			}
			started[in.ID] = *in.StartedAt
		}
		return nil
	})
	t.Logf("every workload ran %.1f s after apply (two node VMs booted)", time.Since(applied).Seconds())
	nodes := e.nodes()
	if len(nodes) != 2 {
		t.Fatalf("get nodes lists %d node VMs, want 2 (one per class): %+v", len(nodes), nodes)
	}
	want := map[string]string{"acme/internal/internal": "shop-a-0", "globex/internal/internal": "shop-b-0"}
	for _, n := range nodes {
		if n.Name != nodevm.VMID(n.Class) || n.State != "running" || len(n.Replicas) != 1 || n.Replicas[0].ID != want[n.Class] {
			t.Errorf("node VM %+v: want one per class, running, carrying %s", n, want[n.Class])
		}
		if n.Shape.Memory.Value() != nodevm.DefaultShape.MemoryBytes || n.Usage.CPU.IsZero() {
			t.Errorf("node VM %s: shape %s, usage %s CPU; want the default shape and its replica's request", n.Name, n.Shape.Memory.String(), n.Usage.CPU.String())
		}
	}
	if q := qemus(e); len(q) != 2 {
		t.Errorf("%d QEMU processes, want the 2 node VMs", len(q))
	}
	table := e.must("get", "nodes", "-o", "wide")
	t.Logf("strata get nodes -o wide:\n%s", table)
	for _, w := range []string{"NAME", "CLASS", nodevm.VMID("acme/internal/internal"), "globex/internal/internal", "50m/1", "100m/1"} {
		if !strings.Contains(table, w) {
			t.Errorf("get nodes lacks %q:\n%s", w, table)
		}
	}
	for name, lines := range map[string][]string{
		"shop-a": {"Runs on:", "node VMs of class acme/internal/internal (policy: tenancy multi)",
			"node VM " + nodevm.VMID("acme/internal/internal") + " (policy: tenancy multi)"},
		"cache": {"the host's kernel, class acme/internal/internal (placement.nodeVM never)", "host, containerd (placement.nodeVM never)",
			"Warning:", "but the policy sends it into node VMs (policy: tenancy multi)"},
	} {
		desc := e.must("describe", "workload", name)
		for _, w := range lines {
			if !strings.Contains(desc, w) {
				t.Errorf("describe workload %s lacks %q:\n%s", name, w, desc)
			}
		}
	}
	// The replicas in node VMs have usage metrics and a usage history (the dashboard's
	// charts, the scaler's input), measured inside their node VMs.
	e.nodeVMUsage("shop-a", "shop-a-0")
	e.checkHistory("shop-b", "shop-b-0", 0)

	// shop-a's volume, shared into its node VM, is the host's volume directory.
	volume := runtime.VolumeDir(filepath.Join(e.dir, "data"), "shop-a", "orders", 0)
	e.must("exec", "shop-a", "--", "sh", "-c", "echo order-1 > /orders/log")
	if got, err := os.ReadFile(filepath.Join(volume, "log")); err != nil || string(got) != "order-1\n" {
		t.Errorf("shop-a wrote order-1 into its volume; the host's %s/log: %q, %v", volume, got, err)
	}
	readOrders := func(when string) {
		t.Helper()
		if out := strings.TrimSpace(e.must("exec", "shop-a", "--", "cat", "/orders/log")); out != "order-1" {
			t.Errorf("%s: shop-a's /orders/log holds %q, want order-1", when, out)
		}
	}
	// shop-a runs on a kernel of its own: one booted minutes ago, not the host's.
	guestUp := e.uptime("shop-a")
	hostUp := e.uptime("web")
	if guestUp > 600 || hostUp-guestUp < 60 {
		t.Errorf("shop-a's kernel has been up %.0f s, the host's %.0f s: want a node VM's, booted by this test", guestUp, hostUp)
	}

	// A crash: a new daemon adopts every replica where it runs.
	e.kill9()
	restarted := time.Now()
	e.start()
	time.Sleep(3 * time.Second) // a few reconciles: a duplicate would start in them
	e.eventually("every workload runs again", 2*time.Minute, func() error {
		for name := range drivers {
			if _, err := e.running(name, 1); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	})
	t.Logf("every workload adopted %.1f s after the restart", time.Since(restarted).Seconds())
	for name, drv := range drivers {
		in := e.workload(name).Status.Instances[0]
		if in.Driver != drv || !in.StartedAt.Equal(started[in.ID]) || in.Restarts != 0 {
			t.Errorf("%s after the restart: %+v; want the same instance on %s, started at %s", name, in, drv, started[in.ID])
		}
	}
	if n := e.nodes(); len(n) != 2 || len(n[0].Replicas) != 1 || len(n[1].Replicas) != 1 {
		t.Errorf("after the restart: node VMs %+v, want the same two with one replica each", n)
	}
	if q := qemus(e); len(q) != 2 {
		t.Errorf("after the restart: %d QEMU processes, want the 2 node VMs", len(q))
	}
	readOrders("after the daemon's restart")
	// A replica's process killed inside its node VM: the controller starts the replica
	// again, in the node VM of its class.
	// The shell that kills may die with the replica's PID namespace before it returns: exit
	// status 137 (SIGKILL) is part of the kill working.
	if _, err := e.strata("exec", "shop-a", "--", "sh", "-c", `for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = sleep ] && kill -9 ${p#/proc/}; done; true`); err != nil {
		if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 137 {
			t.Fatal(err)
		}
	}
	killed := time.Now()
	e.eventually("shop-a runs again after the kill", 3*time.Minute, func() error {
		if _, err := e.running("shop-a", 1); err != nil {
			return err
		}
		in := e.workload("shop-a").Status.Instances[0]
		if in.Restarts < 1 || !in.StartedAt.After(started[in.ID]) {
			return fmt.Errorf("shop-a: %d restarts, started at %s: not started again yet", in.Restarts, in.StartedAt)
		}
		if in.Driver != nodevm.Name {
			return fmt.Errorf("shop-a restarted on driver %q, want %q", in.Driver, nodevm.Name)
		}
		return nil
	})
	t.Logf("shop-a ran again %.1f s after its process was killed", time.Since(killed).Seconds())
	readOrders("after shop-a's restart")
	for _, n := range e.nodes() {
		if n.Class == "acme/internal/internal" && (len(n.Replicas) != 1 || n.Replicas[0].ID != "shop-a-0") {
			t.Errorf("after the restart, node VM %s carries %+v; want shop-a-0 again", n.Name, n.Replicas)
		}
	}
	if q := qemus(e); len(q) != 2 {
		t.Errorf("after shop-a's restart: %d QEMU processes, want the same 2 node VMs", len(q))
	}

	e.snapshotInNodeVM("shop-a")

	e.must("delete", "-f", file)
	e.eventually("the node VMs carry nothing", time.Minute, func() error {
		for _, n := range e.nodes() {
			if len(n.Replicas) > 0 {
				return fmt.Errorf("node VM %s carries %+v", n.Name, n.Replicas)
			}
		}
		return nil
	})
	// The empty node VMs go after the default grace of minutes (TestDaemonNodeVMPlacement
	// waits for a shorter one); the harness ends them.
}

// snapshotInNodeVM snapshots workload, a replica in a node VM that has changed its root
// filesystem and has a volume orders at /orders, changes both again and restores the
// snapshot: the replica starts again in a node VM with the root filesystem and the volume
// of the snapshot.
func (e *e2e) snapshotInNodeVM(workload string) {
	e.t.Helper()
	e.must("exec", workload, "--", "sh", "-c", "echo cart-v1 > /etc/cart")
	var snap v1alpha1.Snapshot
	if err := json.Unmarshal([]byte(e.must("snapshot", "create", workload, "--name", "s1", "-o", "json")), &snap); err != nil {
		e.t.Fatal(err)
	}
	if st := snap.Status; st == nil || len(st.Slots) != 1 || strings.Join(st.Slots[0].Files, ",") != "slot-0/rootfs.tar,slot-0/volumes/orders.tar" || len(st.Warnings) != 0 {
		e.t.Fatalf("snapshot of %s in its node VM: %+v, want one slot with its root filesystem and its volume orders", workload, st)
	}
	e.must("exec", workload, "--", "sh", "-c", "echo cart-v2 > /etc/cart; echo new > /etc/extra; echo order-2 >> /orders/log")
	before := *e.workload(workload).Status.Instances[0].StartedAt
	restored := time.Now()
	e.must("snapshot", "restore", workload, "s1")
	e.eventually(workload+" runs again after the restore", 3*time.Minute, func() error {
		if _, err := e.running(workload, 1); err != nil {
			return err
		}
		in := e.workload(workload).Status.Instances[0]
		if !in.StartedAt.After(before) {
			return fmt.Errorf("still the instance from before the restore")
		}
		if in.Driver != nodevm.Name {
			return fmt.Errorf("%s runs on driver %q after the restore, want %q", workload, in.Driver, nodevm.Name)
		}
		return nil
	})
	e.t.Logf("%s restored into its node VM in %.1f s", workload, time.Since(restored).Seconds())
	if out := e.must("exec", workload, "--", "sh", "-c", "cat /etc/cart; cat /etc/extra 2>/dev/null; true"); out != "cart-v1\n" {
		e.t.Errorf("after the restore %s's /etc/cart and /etc/extra read %q, want the snapshot's cart-v1 and no extra", workload, out)
	}
	if out := e.must("exec", workload, "--", "cat", "/orders/log"); out != "order-1\n" {
		e.t.Errorf("after the restore %s's volume holds %q, want the snapshot's order-1 alone", workload, out)
	}
}

// nodeVMUsage checks that /metrics has the usage of instance, a replica in a node VM:
// its memory, and CPU time that rises while a command burns CPU in it.
func (e *e2e) nodeVMUsage(workload, instance string) {
	e.t.Helper()
	cpu := instanceSeries("strata_instance_cpu_seconds_total", instance, "container", workload)
	mem := instanceSeries("strata_instance_memory_bytes", instance, "container", workload)
	var first float64
	e.eventually(workload+"'s usage is reported", 30*time.Second, func() (err error) {
		first, err = e.metric(cpu)
		return err
	})
	e.must("exec", workload, "--", "sh", "-c", "i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done")
	s, err := e.scrape()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("%s in its node VM: %.2f then %.2f CPU-seconds, %.0f bytes", instance, first, s[cpu], s[mem])
	if s[cpu] <= first || s[mem] <= 0 {
		e.t.Errorf("%s after a command burnt CPU in it: %s %v (before %v), %s %v; want more CPU time and some memory",
			instance, cpu, s[cpu], first, mem, s[mem])
	}
}

// nodes lists the daemon's node VMs (get nodes -o json).
func (e *e2e) nodes() []v1alpha1.NodeVM {
	e.t.Helper()
	var list struct {
		Items []v1alpha1.NodeVM `json:"items"`
	}
	if err := json.Unmarshal([]byte(e.must("get", "nodes", "-o", "json")), &list); err != nil {
		e.t.Fatal(err)
	}
	return list.Items
}

// uptime is how long the kernel under workload name's first replica has run, in seconds.
func (e *e2e) uptime(name string) float64 {
	e.t.Helper()
	out := e.must("exec", name, "--", "cat", "/proc/uptime")
	f := strings.Fields(out)
	if len(f) == 0 {
		e.t.Fatalf("exec %s cat /proc/uptime: %q", name, out)
	}
	s, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		e.t.Fatalf("exec %s cat /proc/uptime: %q: %v", name, out, err)
	}
	return s
}

// TestIsolationClassLabel: the controller labels an instance with its class under the key
// the nodevm driver groups node VMs by.
func TestIsolationClassLabel(t *testing.T) {
	if runtime.LabelIsolationClass != nodevm.LabelIsolationClass {
		t.Errorf("runtime.LabelIsolationClass %q, nodevm.LabelIsolationClass %q: one key, or classes mix", runtime.LabelIsolationClass, nodevm.LabelIsolationClass)
	}
}

// TestDaemonNodeVMsOff: with --node-vms off, a replica the policy sends into node VMs
// runs nowhere, on the host's kernel neither: its workload fails saying why and what to
// do, describe host says node VMs are off, and a host-class workload runs as before.
func TestDaemonNodeVMsOff(t *testing.T) {
	e := newE2E(t)
	e.extraArgs = []string{"--node-vms", "off"}
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	file := filepath.Join(e.dir, "tenants.yaml")
	if err := os.WriteFile(file, []byte(tenants), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", file)
	e.eventually("web and cache run on the host, the shops fail", time.Minute, func() error {
		for _, name := range []string{"web", "cache"} {
			if _, err := e.running(name, 1); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		for _, name := range []string{"shop-a", "shop-b"} {
			st := e.workload(name).Status
			if st.Phase != v1alpha1.PhaseFailed || len(st.Instances) != 0 {
				return fmt.Errorf("%s: phase %s, instances %+v; want Failed with none", name, st.Phase, st.Instances)
			}
		}
		return nil
	})
	var ready v1alpha1.Condition
	for _, c := range e.workload("shop-a").Status.Conditions {
		if c.Type == "Ready" {
			ready = c
		}
	}
	for _, want := range []string{"node VMs of class acme/internal/internal (policy: tenancy multi)", "--node-vms=off", "placement.nodeVM: never"} {
		if ready.Reason != "NoNodeVMs" || !strings.Contains(ready.Message, want) {
			t.Errorf("shop-a's Ready condition %+v lacks %q", ready, want)
		}
	}
	if ev := e.must("events"); !strings.Contains(ev, "NoNodeVMs") {
		t.Errorf("no NoNodeVMs event:\n%s", ev)
	}
	if n := e.nodes(); len(n) != 0 {
		t.Errorf("get nodes lists %+v, want none", n)
	}
	name, _ := os.Hostname()
	if desc := e.must("describe", "host", strings.ToLower(name)); !strings.Contains(desc, "no node VMs: node VMs are off (--node-vms=off)") {
		t.Errorf("describe host does not say node VMs are off:\n%s", desc)
	}
	e.must("delete", "-f", file)
}
