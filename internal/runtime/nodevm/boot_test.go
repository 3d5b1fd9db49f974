package nodevm_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/place"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/nodevm"
	"strata.dev/strata/internal/runtime/qemu"
)

// driverWith returns a nodevm driver over the setup's state with shape and
// boot timeout. Its node VMs keep next to nothing for themselves, so that a
// shape too small to boot still takes an instance.
func (s setup) driverWith(t *testing.T, shape nodevm.Shape, boot time.Duration) *nodevm.Driver {
	t.Helper()
	d, err := nodevm.New(t.Context(), nodevm.Config{
		QEMU: s.q, StateDir: s.state, GuestCacheDir: guestCache, Tools: s.tools, Tiers: []v1alpha1.Tier{v1alpha1.TierContainer}, Ports: 4,
		NodeShape: shape, BootTimeout: boot, Overheads: place.Overheads{NodeReserved: place.Amount{CPUMilli: 1, MemoryBytes: 1 << 20}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// nodeVMs lists the node VMs in the setup's qemu state.
func (s setup) nodeVMs(t *testing.T) []runtime.Status {
	t.Helper()
	list, err := s.q.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var vms []runtime.Status
	for _, st := range list {
		if st.Labels[qemu.LabelNodeVM] == "true" {
			vms = append(vms, st)
		}
	}
	return vms
}

// startAndRemove starts a serving container with d, and stops and removes it.
func (s setup) startAndRemove(t *testing.T, d *nodevm.Driver, id string) runtime.Status {
	t.Helper()
	st, err := d.Start(t.Context(), s.serve(id))
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	if err := d.Stop(t.Context(), id, 0); err != nil {
		t.Errorf("stop %s: %v", id, err)
	}
	if err := d.Remove(t.Context(), id); err != nil {
		t.Errorf("remove %s: %v", id, err)
	}
	return st
}

// TestBootFailure: a node VM whose guest cannot boot (96 MiB cannot hold
// a node initramfs that carries runc and runsc, as before the tools disk,
// unpacked, so the kernel finds no init and panics)
// fails the Start with the console's last lines, is removed, and the
// class's next Start boots a new node VM that works.
func TestBootFailure(t *testing.T) {
	s := needNodeVMs(t)
	s.removeNodeVMs(t)
	small := s.driverWith(t, nodevm.Shape{CPUMilli: 1000, MemoryBytes: 96 << 20}, 0)
	nodevm.SetToolsInInitramfs(small)
	_, err := small.Start(t.Context(), s.serve("tiny"))
	if err == nil {
		t.Fatal("a node VM of 96 MiB booted, want its boot to fail")
	}
	for _, want := range []string{"did not come up", "its console", "the class's next start boots a new one"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start error %q does not say %q", err, want)
		}
	}
	// The console's end is quoted; what the guest says there depends on its kernel:
	// the cloud kernel panics, strata's own fails to unpack the initramfs (and its
	// init then finds no config).
	if !strings.Contains(err.Error(), "panic") && !strings.Contains(err.Error(), "Initramfs unpacking failed") {
		t.Errorf("start error %q quotes neither a kernel panic nor a failed initramfs from the console", err)
	}
	if vms := s.nodeVMs(t); len(vms) != 0 {
		t.Errorf("node VMs left after a failed boot: %v", vms)
	}
	if _, err := small.Status(t.Context(), "tiny"); err == nil {
		t.Error("the instance of a failed start has a record")
	}
	s.startAndRemove(t, s.driver(t), "after")
}

// TestBootHangs: a node VM whose guest stays silent (paused as it boots) is
// given up after the boot timeout and removed; the class's next Start boots
// a new one instead of waiting on the silent one again.
func TestBootHangs(t *testing.T) {
	s := needNodeVMs(t)
	s.removeNodeVMs(t)
	const timeout = 15 * time.Second
	d := s.driverWith(t, nodevm.Shape{CPUMilli: 1000, MemoryBytes: 1 << 30}, timeout)
	vm := nodevm.VMID(nodevm.DefaultClass)
	paused := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		// Pause QEMU as soon as it runs: the guest takes seconds to boot.
		for ctx.Err() == nil {
			if st, err := s.q.Status(ctx, vm); err == nil && st.State == runtime.StateRunning {
				paused <- s.q.Pause(ctx, vm)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		paused <- ctx.Err()
	}()
	began := time.Now()
	_, err := d.Start(t.Context(), s.serve("silent"))
	took := time.Since(began)
	if perr := <-paused; perr != nil {
		t.Fatalf("pause the node VM as it boots: %v", perr)
	}
	if err == nil {
		t.Fatal("a paused node VM came up")
	}
	if !strings.Contains(err.Error(), "did not answer within 15s") || !strings.Contains(err.Error(), "its console") {
		t.Errorf("start error %q, want it to name the timeout and quote the console", err)
	}
	// Only the lower bound: before the boot the Start prepares the image's disk and
	// the initramfs, and after it stops the VM, which on a loaded host takes a while.
	if took < timeout {
		t.Errorf("the start took %v, less than the boot timeout of %v: it did not wait for the guest", took, timeout)
	}
	if vms := s.nodeVMs(t); len(vms) != 0 {
		t.Errorf("node VMs left after a boot that hung: %v", vms)
	}
	// The next Start of the class (with the default timeout, which follows
	// the accelerator) boots a new node VM.
	st := s.startAndRemove(t, s.driver(t), "after")
	if vms := s.nodeVMs(t); len(vms) != 1 || vms[0].PID != st.PID {
		t.Errorf("node VMs %v, want one: the new one (QEMU pid %d)", vms, st.PID)
	}
}
