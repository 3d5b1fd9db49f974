package fake_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/runtime/fake"
)

// newVMDriver returns a fake driver of the vm tier on a manual clock.
func newVMDriver(t *testing.T) (*fake.Driver, *fake.ManualClock) {
	t.Helper()
	clock := fake.NewManualClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	d, err := fake.New(fake.Options{
		Host:   fake.NewHost(fake.HostOptions{Clock: clock}),
		Tiers:  []v1alpha1.Tier{v1alpha1.TierVM},
		Images: []string{"localhost/app:1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, clock
}

func vmSpec(id string, cmd []string) runtime.InstanceSpec {
	return runtime.InstanceSpec{ID: id, Workload: "app", Tier: v1alpha1.TierVM, Image: "localhost/app:1", Command: cmd}
}

func state(t *testing.T, d *fake.Driver, id string) runtime.Status {
	t.Helper()
	st, err := d.Status(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func exec(t *testing.T, d *fake.Driver, id string, cmd []string) string {
	t.Helper()
	var out strings.Builder
	if code, err := d.Exec(context.Background(), id, cmd, nil, &out, nil); err != nil || code != 0 {
		t.Fatalf("exec %q: %d %v", cmd, code, err)
	}
	return out.String()
}

// TestPauseStopsTheClock: the time an instance is paused does not count
// towards its script nor its CPU time; SIGTERM waits while it is paused, so
// Stop kills it after the grace; a paused instance runs no exec.
func TestPauseStopsTheClock(t *testing.T) {
	d, clock := newDriver(t)
	ctx := context.Background()
	if _, err := d.Start(ctx, spec("app-0", script.Sleep(30))); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)
	if err := d.Pause(ctx, "app-0"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if st := state(t, d, "app-0"); st.State != runtime.StateRunning || st.Message != "paused" {
		t.Fatalf("paused for an hour: %+v, want running and paused", st)
	}
	if s, err := d.Stats(ctx, "app-0"); err != nil || s.CPUSeconds != 10 {
		t.Errorf("stats after 10 s running and an hour paused: %+v, %v; want 10 CPU seconds", s, err)
	}
	if _, err := d.Exec(ctx, "app-0", script.Echo("frozen"), nil, nil, nil); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("exec in a paused instance: %v, want ErrNotRunning", err)
	}
	if err := d.Resume(ctx, "app-0"); err != nil {
		t.Fatal(err)
	}
	if out := exec(t, d, "app-0", script.Echo("thawed")); out != "thawed\n" {
		t.Errorf("exec after the resume: %q", out)
	}
	clock.Advance(19 * time.Second)
	if st := state(t, d, "app-0"); st.State != runtime.StateRunning || st.Message != "" {
		t.Fatalf("19 s after the resume of a 30 s sleep paused at 10 s: %+v, want running", st)
	}
	clock.Advance(time.Second)
	if st := state(t, d, "app-0"); st.State != runtime.StateExited || st.ExitCode != 0 {
		t.Fatalf("20 s after the resume: %+v, want exited 0", st)
	}

	if _, err := d.Start(ctx, spec("app-1", script.Serve(600))); err != nil {
		t.Fatal(err)
	}
	if err := d.Pause(ctx, "app-1"); err != nil {
		t.Fatal(err)
	}
	// The grace period starts when Stop waits on the clock, which the test cannot see
	// apart from the paused script's own timer: step the clock a second at a time
	// until Stop returns (the server's 600 s would end far later than the grace).
	done := make(chan error, 1)
	go func() { done <- d.Stop(ctx, "app-1", 10*time.Second) }()
	var stopErr error
	for step := 0; ; step++ {
		if step == 60 {
			t.Fatal("Stop of a paused server did not return 60 s after a 10 s grace")
		}
		select {
		case stopErr = <-done:
		case <-time.After(5 * time.Millisecond):
			clock.Advance(time.Second)
			continue
		}
		break
	}
	if stopErr != nil {
		t.Fatal(stopErr)
	}
	if st := state(t, d, "app-1"); st.ExitCode != 137 {
		t.Errorf("stop of a paused server: exit code %d, want 137 (killed after the grace)", st.ExitCode)
	}
}

// TestSaveRestoreState: a restored VM goes on from the saved moment: the time
// its script had left, the disk it had; an exited VM runs again.
func TestSaveRestoreState(t *testing.T) {
	d, clock := newVMDriver(t)
	ctx := context.Background()
	if _, err := d.Start(ctx, vmSpec("vm-0", script.Sleep(100))); err != nil {
		t.Fatal(err)
	}
	exec(t, d, "vm-0", script.WriteFile("/data", "saved"))
	clock.Advance(40 * time.Second) // 60 s left
	saved, err := d.SaveState(ctx, "vm-0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	exec(t, d, "vm-0", script.WriteFile("/data", "later"))
	clock.Advance(60 * time.Second)
	if st := state(t, d, "vm-0"); st.State != runtime.StateExited {
		t.Fatalf("after its 100 s: %+v, want exited", st)
	}
	if err := d.RestoreState(ctx, "vm-0", saved); err != nil {
		t.Fatal(err)
	}
	if got := exec(t, d, "vm-0", script.ReadFile("/data")); got != "saved\n" {
		t.Errorf("restored disk: %q, want the saved one", got)
	}
	clock.Advance(59 * time.Second)
	if st := state(t, d, "vm-0"); st.State != runtime.StateRunning {
		t.Fatalf("59 s after a restore with 60 s left: %+v, want running", st)
	}
	clock.Advance(time.Second)
	if st := state(t, d, "vm-0"); st.State != runtime.StateExited || st.ExitCode != 0 {
		t.Fatalf("60 s after the restore: %+v, want exited 0", st)
	}
	if _, err := d.SaveState(ctx, "vm-0", t.TempDir()); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("save the state of an exited VM: %v, want ErrNotRunning", err)
	}
	kernel := vmSpec("vm-1", script.Serve(600))
	kernel.Image, kernel.VM = "", &v1alpha1.VMSource{Kernel: "vmlinuz"}
	if _, err := d.Start(ctx, kernel); err != nil {
		t.Fatal(err)
	}
	if err := d.SnapshotDisk(ctx, "vm-1", filepath.Join(t.TempDir(), "disk")); !errors.Is(err, runtime.ErrUnsupported) {
		t.Errorf("snapshot of a kernel-only VM: %v, want ErrUnsupported", err)
	}
}

// TestSlotDisk: a disk VM's writes stay in its DiskDir for the next instance;
// RestoreSlotDisk puts a disk snapshot there, but not while a VM uses it.
func TestSlotDisk(t *testing.T) {
	d, _ := newVMDriver(t)
	ctx := context.Background()
	dir := t.TempDir()
	sp := vmSpec("vm-0", script.Serve(600))
	sp.Image, sp.DiskDir = "", filepath.Join(dir, "slot")
	sp.VM = &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: "/images/base.qcow2"}}
	cycle := func() {
		t.Helper()
		if err := d.Stop(ctx, sp.ID, 0); err != nil {
			t.Fatal(err)
		}
		if err := d.Remove(ctx, sp.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Start(ctx, sp); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	exec(t, d, sp.ID, script.WriteFile("/data", "one"))
	snap := filepath.Join(dir, "snap")
	if err := d.SnapshotDisk(ctx, sp.ID, snap); err != nil {
		t.Fatal(err)
	}
	exec(t, d, sp.ID, script.WriteFile("/data", "two"))
	cycle()
	if got := exec(t, d, sp.ID, script.ReadFile("/data")); got != "two\n" {
		t.Errorf("the next instance reads %q, want the slot disk's \"two\"", got)
	}
	if err := d.RestoreSlotDisk(ctx, sp.DiskDir, sp.VM.Disk.Path, snap); !errors.Is(err, runtime.ErrRunning) {
		t.Errorf("restore a slot disk in use: %v, want ErrRunning", err)
	}
	if err := d.Stop(ctx, sp.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.RestoreSlotDisk(ctx, sp.DiskDir, sp.VM.Disk.Path, snap); err != nil {
		t.Fatal(err)
	}
	cycle()
	if got := exec(t, d, sp.ID, script.ReadFile("/data")); got != "one\n" {
		t.Errorf("after RestoreSlotDisk the next instance reads %q, want the snapshot's \"one\"", got)
	}
	if err := d.RestoreSlotDisk(ctx, filepath.Join(dir, "other"), "/b", filepath.Join(dir, "slot", "base")); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("restore from a file that is no disk: %v, want ErrInvalid", err)
	}
}

// TestCallsAndFailures: the host records the operations in order and fails the
// one a test names, once, before it has any effect.
func TestCallsAndFailures(t *testing.T) {
	d, _ := newDriver(t)
	ctx := context.Background()
	if _, err := d.Start(ctx, spec("app-0", script.Serve(600))); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	var seen []string
	d.Host().OnCall(func(c fake.Call) { seen = append(seen, c.String()) })
	d.Host().Fail(fake.OpPause, "app-0", boom)
	if err := d.Pause(ctx, "app-0"); !errors.Is(err, boom) {
		t.Fatalf("pause: %v, want boom", err)
	}
	if st := state(t, d, "app-0"); st.Message == "paused" {
		t.Error("a failed pause paused the instance")
	}
	if err := d.Pause(ctx, "app-0"); err != nil {
		t.Fatalf("the failure is for one call only: %v", err)
	}
	if err := d.Resume(ctx, "app-0"); err != nil {
		t.Fatal(err)
	}
	if err := d.Resume(ctx, "app-9"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatal(err)
	}
	var got []string
	for _, c := range d.Host().Calls() {
		got = append(got, c.String())
	}
	want := []string{"pause app-0 failed", "pause app-0", "resume app-0", "resume app-9 failed"}
	if !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	// OnCall sees each call as it begins: the injected failure, not the lookup's.
	if want := []string{"pause app-0 failed", "pause app-0", "resume app-0", "resume app-9"}; !slices.Equal(seen, want) {
		t.Errorf("OnCall saw %q, want %q", seen, want)
	}
}
