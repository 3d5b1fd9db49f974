package daemon_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/internal/control"
	"strata.dev/strata/internal/runtime/nodevm"
)

// shopFleet is a Fleet for this host (%s: its name) whose node VMs are small: 512Mi, of
// which each keeps 256Mi for itself, so that two replicas requesting 100Mi fit in one.
const shopFleet = `apiVersion: strata.dev/v1alpha1
kind: Fleet
metadata: {name: lab}
spec:
  hosts:
  - name: %s
    capacity: {cpu: "2", memory: 8Gi}
  nodeShapes:
  - {name: small, cpu: "1", memory: 512Mi}
  - {name: large, cpu: "2", memory: 2Gi}
  overheads:
    nodeReserved: {cpu: 100m, memory: 256Mi}
`

// shopN is a customer's multi-tenant shop of %d replicas, which the built-in policy sends
// into node VMs.
const shopN = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: shop, labels: {strata.dev/tenant: acme}}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
  replicas: %d
  resources: {cpu: 100m, memory: 100Mi}
  traits: {tenancy: multi}
`

// TestDaemonNodeVMPlacement: with a Fleet for this host, the daemon packs a workload's
// replicas into node VMs of the Fleet's cheapest shape that holds them, two to a node VM:
// scaled out to three it runs in two node VMs, scaled in to one it leaves one once the
// other has been empty for the grace, and deleted it leaves none. get nodes and plan
// --host show the node VMs with their shape and replicas.
func TestDaemonNodeVMPlacement(t *testing.T) {
	e := newE2E(t)
	kdir := vmEnv(t, e)
	fleet := filepath.Join(e.dir, "fleet.yaml")
	if err := os.WriteFile(fleet, fmt.Appendf(nil, shopFleet, control.DefaultHostName()), 0o600); err != nil {
		t.Fatal(err)
	}
	const grace = 20 * time.Second
	e.extraArgs = []string{"--guest-kernel-dir", kdir, "--fleet", fleet, "--node-vm-grace", grace.String()}
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	file := filepath.Join(e.dir, "shop.yaml")
	apply := func(replicas int) {
		t.Helper()
		if err := os.WriteFile(file, fmt.Appendf(nil, shopN, replicas), 0o600); err != nil {
			t.Fatal(err)
		}
		e.must("apply", "-f", file)
	}
	const class = "acme/internal/internal"
	first, second := nodevm.VMIDAt(class, 0), nodevm.VMIDAt(class, 1)

	apply(3)
	applied := time.Now()
	e.eventually("three replicas run", 6*time.Minute, func() error {
		_, err := e.running("shop", 3)
		return err
	})
	t.Logf("three replicas ran %.1f s after apply (two node VMs booted)", time.Since(applied).Seconds())
	nodes := e.nodes()
	var held []int
	for _, n := range nodes {
		held = append(held, len(n.Replicas))
		if n.Class != class || n.ShapeName != "small" || n.Shape.Memory.String() != "512Mi" || n.State != "running" {
			t.Errorf("node VM %+v: want class %s, shape small of 512Mi, running", n, class)
		}
		if want := int64(len(n.Replicas)) * 100 << 20; n.Usage.Memory.Value() != want {
			t.Errorf("node VM %s: usage %s memory, want %d bytes for %d replicas", n.Name, n.Usage.Memory.String(), want, len(n.Replicas))
		}
	}
	slices.Sort(held)
	if len(nodes) != 2 || nodes[0].Name != first || nodes[1].Name != second || !slices.Equal(held, []int{1, 2}) {
		t.Fatalf("node VMs %+v: want %s and %s, holding two replicas and one", nodes, first, second)
	}
	if q := qemus(e); len(q) != 2 {
		t.Errorf("%d QEMU processes, want the 2 node VMs", len(q))
	}
	table := e.must("get", "nodes")
	t.Logf("strata get nodes:\n%s", table)
	for _, w := range []string{"SHAPE", first, second, "small", "200Mi/512Mi", "100Mi/512Mi"} {
		if !strings.Contains(table, w) {
			t.Errorf("get nodes lacks %q:\n%s", w, table)
		}
	}
	plan := e.must("plan", "--host")
	t.Logf("strata plan --host:\n%s", plan)
	if !strings.Contains(plan, "small (1 CPU, 512Mi)") || !strings.Contains(plan, "2 node VMs") {
		t.Errorf("plan --host does not show the two small node VMs:\n%s", plan)
	}

	// Scaled in to one replica, shop-0: the node VM without it is empty and goes after the
	// grace; the other stays.
	keep := ""
	for _, n := range nodes {
		for _, r := range n.Replicas {
			if r.ID == "shop-0" {
				keep = n.Name
			}
		}
	}
	apply(1)
	scaled := time.Now()
	e.eventually("one node VM is left", grace+3*time.Minute, func() error {
		if n := e.nodes(); len(n) != 1 || n[0].Name != keep || len(n[0].Replicas) != 1 {
			return fmt.Errorf("node VMs %+v, want %s with shop-0", n, keep)
		}
		return nil
	})
	if took := time.Since(scaled); took < grace {
		t.Errorf("the empty node VM went %v after the scale-in, before its grace of %v", took.Round(time.Second), grace)
	}
	if q := qemus(e); len(q) != 1 {
		t.Errorf("%d QEMU processes after the scale-in, want 1", len(q))
	}

	e.must("delete", "-f", file)
	e.eventually("no node VM is left", grace+3*time.Minute, func() error {
		if n := e.nodes(); len(n) != 0 {
			return fmt.Errorf("node VMs %+v", n)
		}
		if q := qemus(e); len(q) != 0 {
			return fmt.Errorf("QEMU processes %v", q)
		}
		return nil
	})
	left, _ := filepath.Glob(filepath.Join(e.dir, "data", "vm", "nodevm-*"))
	more, _ := filepath.Glob(filepath.Join(e.dir, "data", "nodevm", "nodes", "nodevm-*"))
	if len(left)+len(more) > 0 {
		t.Errorf("node VM files left: %v %v", left, more)
	}
}
