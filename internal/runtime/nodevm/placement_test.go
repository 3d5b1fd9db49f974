package nodevm_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/place"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/runtime/nodevm"
)

// placementDriver returns a nodevm driver whose node VMs are small: 512 MiB
// of which each keeps 256 MiB, so that two instances requesting 100 MiB fit
// and a third does not. An empty node VM is removed after grace.
func (s setup) placementDriver(t *testing.T, grace time.Duration) *nodevm.Driver {
	t.Helper()
	d, err := nodevm.New(t.Context(), nodevm.Config{
		QEMU: s.q, StateDir: s.state, GuestCacheDir: guestCache, Tools: s.tools, Tiers: []v1alpha1.Tier{v1alpha1.TierContainer}, Ports: 4,
		NodeShape:  nodevm.Shape{Name: "small", CPUMilli: 1000, MemoryBytes: 512 << 20},
		Overheads:  place.Overheads{NodeReserved: place.Amount{CPUMilli: 100, MemoryBytes: 256 << 20}},
		EmptyGrace: grace,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// TestPlacement: instances of a class fill a node VM up to its shape less
// its reserve, and the next one boots a second node VM of the class; an
// instance of another class gets its own; an instance larger than a node VM
// is refused. A node VM left empty is reused by a Start within the grace
// and removed after it, with everything it had on the host, also by a new
// Driver value that finds it empty.
func TestPlacement(t *testing.T) {
	s := needNodeVMs(t)
	s.removeNodeVMs(t)
	const grace = 20 * time.Second
	d := s.placementDriver(t, grace)
	const shop, acme = "shop/internal/internal", "acme/internal/internal"
	start := func(d *nodevm.Driver, id, class string, mem int64) (runtime.Status, error) {
		t.Helper()
		return d.Start(t.Context(), runtime.InstanceSpec{
			ID: id, Workload: id, Tier: v1alpha1.TierContainer, Image: s.image, Command: script.Serve(600),
			CPUMilli: 100, MemoryBytes: mem, Labels: map[string]string{nodevm.LabelIsolationClass: class},
		})
	}
	pids := map[string]int{}
	mustStart := func(id, class string) {
		t.Helper()
		st, err := start(d, id, class, 100<<20)
		if err != nil {
			t.Fatalf("start %s of class %s: %v", id, class, err)
		}
		pids[id] = st.PID
	}
	end := func(d *nodevm.Driver, id string) {
		t.Helper()
		if err := d.Stop(t.Context(), id, 0); err != nil {
			t.Errorf("stop %s: %v", id, err)
		}
		if err := d.Remove(t.Context(), id); err != nil {
			t.Errorf("remove %s: %v", id, err)
		}
	}

	// Too large for a node VM: refused before anything boots.
	_, err := start(d, "big", shop, 300<<20)
	if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "requests 0.1 CPU, 300Mi") || !strings.Contains(err.Error(), "small (1 CPU, 512Mi)") {
		t.Errorf("an instance larger than a node VM: %v; want ErrInvalid naming its request and the shape", err)
	}
	if vms := s.nodeVMs(t); len(vms) != 0 {
		t.Errorf("node VMs after a refused start: %v", vms)
	}

	mustStart("s1", shop)
	mustStart("s2", shop)
	mustStart("s3", shop)
	mustStart("a1", acme)
	if pids["s1"] != pids["s2"] || pids["s3"] == pids["s1"] || pids["a1"] == pids["s1"] || pids["a1"] == pids["s3"] {
		t.Errorf("node VM processes %v: want s1 and s2 in one, s3 in a second, a1 in a third", pids)
	}
	nodes, err := d.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		name, class, shape string
		mem                int64
		ids                string
	}
	var got []row
	for _, n := range nodes {
		got = append(got, row{n.Name, n.Class, n.Shape, n.UsedMemoryBytes, strings.Join(n.Instances, ",")})
		if n.MemoryBytes != 512<<20 || n.CPUMilli != 1000 {
			t.Errorf("node VM %s: size %d milli-CPU, %d bytes; want the shape's", n.Name, n.CPUMilli, n.MemoryBytes)
		}
	}
	want := []row{
		{nodevm.VMIDAt(shop, 0), shop, "small", 200 << 20, "s1,s2"},
		{nodevm.VMIDAt(shop, 1), shop, "small", 100 << 20, "s3"},
		{nodevm.VMIDAt(acme, 0), acme, "small", 100 << 20, "a1"},
	}
	slices.SortFunc(want, func(a, b row) int { return strings.Compare(a.name, b.name) })
	if !slices.Equal(got, want) {
		t.Errorf("nodes:\n got %+v\nwant %+v", got, want)
	}

	// s3's node VM, left empty, takes the next instance of its class within
	// the grace: no new boot.
	end(d, "s3")
	mustStart("s4", shop)
	if pids["s4"] != pids["s3"] {
		t.Errorf("s4 runs in QEMU pid %d, want s3's empty node VM (pid %d)", pids["s4"], pids["s3"])
	}

	// Empty for the grace, a node VM is removed with what it had on the host.
	end(d, "s4")
	end(d, "a1")
	gone := []string{nodevm.VMIDAt(shop, 1), nodevm.VMIDAt(acme, 0)}
	s.waitGone(t, gone, grace)
	if vms := s.nodeVMs(t); len(vms) != 1 || vms[0].ID != nodevm.VMIDAt(shop, 0) || vms[0].PID != pids["s1"] {
		t.Errorf("node VMs %v, want the one of s1 and s2 alone", vms)
	}

	// A new Driver value finds the last node VM empty and removes it after
	// the grace.
	end(d, "s1")
	end(d, "s2")
	_ = d.Close()
	s.placementDriver(t, grace)
	s.waitGone(t, []string{nodevm.VMIDAt(shop, 0)}, grace)
	if vms := s.nodeVMs(t); len(vms) != 0 {
		t.Errorf("node VMs left: %v", vms)
	}
}

// waitGone waits until the node VMs ids are gone, which is to happen after
// grace but not before it, and checks that nothing of them is left on the
// host: their state in the qemu driver, their console logs, initramfs and
// marks in the nodevm driver's state.
func (s setup) waitGone(t *testing.T, ids []string, grace time.Duration) {
	t.Helper()
	began := time.Now()
	deadline := began.Add(grace + 2*time.Minute)
	for {
		left := 0
		for _, st := range s.nodeVMs(t) {
			if slices.Contains(ids, st.ID) {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node VMs %v still there %v after they were left empty (grace %v)", ids, time.Since(began).Round(time.Second), grace)
		}
		if time.Since(began) < grace*3/4 && left < len(ids) {
			t.Fatalf("a node VM of %v went after %v, before the grace of %v", ids, time.Since(began).Round(time.Second), grace)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if took := time.Since(began); took < grace*3/4 {
		t.Errorf("node VMs %v went after %v, before the grace of %v", ids, took.Round(time.Second), grace)
	}
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(s.qemu, id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the qemu driver's state of node VM %s is left: %v", id, err)
		}
		left, _ := filepath.Glob(filepath.Join(s.state, "nodes", id+".*"))
		if len(left) > 0 {
			t.Errorf("files of node VM %s left: %v", id, left)
		}
	}
}
