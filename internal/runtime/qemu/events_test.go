package qemu_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
)

// TestExitSeenFirstByAnotherValue: when a second Driver value over the same state
// directory (one that re-adopts instances) notices a QEMU gone before the value that
// started it has reaped it, the first value's subscribers still get the exit event.
func TestExitSeenFirstByAnotherValue(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "boot.img")
	if err := os.WriteFile(raw, bootSector(), 0o600); err != nil {
		t.Fatal(err)
	}
	first := newVMDriver(t, filepath.Join(dir, "state"))
	second := newVMDriver(t, filepath.Join(dir, "state"))
	events, err := first.Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	spec := runtime.InstanceSpec{
		ID: "boot-0", Workload: "boot", Tier: v1alpha1.TierVM, MemoryBytes: 64 << 20,
		VM:      &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: raw, Format: v1alpha1.DiskRaw}},
		LogPath: filepath.Join(dir, "boot.log"),
	}
	removeAll(t, first, spec.ID)
	st, err := first.Start(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	release := qemu.HoldInstance(first, spec.ID)
	_, _ = first.HMP(t.Context(), spec.ID, "quit")
	waitFor(t, "QEMU to end", 30*time.Second, func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(st.PID))
		return err != nil
	})
	finished, err := qemu.SettleHeld(second, spec.ID)
	release()
	if err != nil || !finished {
		t.Fatalf("the second driver value did not record the end: %v, %v", finished, err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			if e.ID == spec.ID && e.Type == runtime.EventExit {
				return
			}
		case <-deadline:
			t.Fatal("the driver value that started the VM sent no exit event")
		}
	}
}
