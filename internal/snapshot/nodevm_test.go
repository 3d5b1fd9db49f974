package snapshot_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/runtime/fake"
	"strata.dev/strata/internal/snapshot"
)

// TestCreateInNodeVMs: the replicas of a workload that runs inside node VMs are
// paused and copied by the driver their status names (the node VM driver), not by
// the tier's driver on the host, which does not know them; replicas split between
// two drivers are refused. A restore puts the layers in place for the next replicas.
func TestCreateInNodeVMs(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	nodeVMs, err := fake.New(fake.Options{Host: h.host, Name: "nodevm", Tiers: []v1alpha1.Tier{v1alpha1.TierContainer}, Images: []string{image}})
	if err != nil {
		t.Fatal(err)
	}
	host, err := runtime.NewRegistry(h.d)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := host.WithNodeVMs(nodeVMs)
	if err != nil {
		t.Fatal(err)
	}
	m := snapshot.New(snapshot.Options{Store: h.st, Drivers: reg, DataDir: h.data, Events: h.events, HoldTimeout: 5 * time.Second})

	store := func(name string, instances ...v1alpha1.Instance) {
		t.Helper()
		rec, err := objects.Record(v1alpha1.KindWorkload, v1alpha1.ObjectMeta{Name: name}, v1alpha1.WorkloadSpec{Image: image},
			&v1alpha1.WorkloadStatus{Tier: v1alpha1.TierContainer, Instances: instances,
				NodeVM: &v1alpha1.NodeVMDecision{Run: instances[len(instances)-1].Driver == "nodevm", Class: "acme/internal/internal"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.st.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	start := func(d *fake.Driver, id, workload string) v1alpha1.Instance {
		t.Helper()
		if _, err := d.Start(ctx, runtime.InstanceSpec{ID: id, Workload: workload, Tier: v1alpha1.TierContainer, Image: image, Command: script.Serve(3600)}); err != nil {
			t.Fatal(err)
		}
		return v1alpha1.Instance{ID: id, Tier: v1alpha1.TierContainer, Driver: d.Name(), State: string(runtime.StateRunning)}
	}

	store("shop", start(nodeVMs, "shop-0", "shop"), start(nodeVMs, "shop-1", "shop"))
	var out strings.Builder
	if code, err := nodeVMs.Exec(ctx, "shop-0", script.WriteFile("/etc/cart", "two apples"), nil, &out, &out); err != nil || code != 0 {
		t.Fatalf("exec: %d %v %s", code, err, out.String())
	}
	h.calls()
	snap, err := m.Create(ctx, "shop", "before-sale", false)
	if err != nil {
		t.Fatalf("snapshot of replicas in node VMs: %v", err)
	}
	h.wantCalls("pause shop-0", "pause shop-1", "save-rootfs shop-0", "save-rootfs shop-1", "resume shop-0", "resume shop-1")
	if len(snap.Status.Slots) != 2 || len(snap.Status.Warnings) != 0 {
		t.Errorf("snapshot status %+v, want both slots without warnings", snap.Status)
	}
	if _, err := os.Stat(filepath.Join(snapshot.Dir(h.data, "shop", "before-sale"), "slot-0", "rootfs.tar")); err != nil {
		t.Errorf("slot 0's root filesystem: %v", err)
	}

	// A restore holds the workload while its replicas are stopped and puts each slot's
	// layer where its next instance, in a node VM again, starts from it.
	stop := h.controller()
	_, err = m.Restore(ctx, "shop", "before-sale")
	stop()
	if err != nil {
		t.Errorf("restore of a workload in node VMs: %v", err)
	}
	for slot := range 2 {
		if _, err := os.Stat(runtime.RootfsLayerFile(h.data, "shop", slot)); err != nil {
			t.Errorf("slot %d's layer for its next instance: %v", slot, err)
		}
	}

	// One replica on the host's kernel, one in a node VM: no snapshot.
	store("mixed", start(h.d, "mixed-0", "mixed"), start(nodeVMs, "mixed-1", "mixed"))
	_, err = m.Create(ctx, "mixed", "now", false)
	if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), `mixed-0 on "fake" and mixed-1 on "nodevm"`) {
		t.Errorf("snapshot of replicas on two drivers: %v, want ErrInvalid naming both", err)
	}
	if _, err := m.CreateGroup(ctx, []string{"mixed"}, "now"); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("group snapshot of replicas on two drivers: %v, want ErrInvalid", err)
	}
}
