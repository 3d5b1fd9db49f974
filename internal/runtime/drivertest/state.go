package drivertest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
)

// pauseRun is how long the paused instance's main process runs, in seconds, when
// it is not paused; the test keeps it paused longer than that. It leaves room
// between the process's start and the pause: the suite learns that the process
// serves from its log, which a node VM's driver copies from the guest every few
// seconds, and a busy emulated guest is slower still.
const pauseRun = 10

// testPause: a paused instance makes no progress: a process that would have
// ended by now still runs (and is reported running) while it is paused, and
// ends by itself once resumed. Pause and Resume of an exited instance are
// ErrNotRunning, of an unknown one ErrNotFound.
func (s *suite) testPause(t *testing.T) {
	p := s.d.(runtime.Pauser) // Run registers the test only for a Pauser
	spec := s.spec(t, "pause", script.Serve(pauseRun))
	s.serve(t, spec)
	if err := p.Pause(ctx(t), spec.ID); err != nil {
		t.Fatalf("pause: %v", err)
	}
	pausedAt := time.Now()
	time.Sleep(pauseRun*time.Second + 1500*time.Millisecond)
	st, err := s.d.Status(ctx(t), spec.ID)
	if err != nil {
		t.Fatalf("status while paused: %v", err)
	}
	if st.State != runtime.StateRunning {
		t.Fatalf("paused %v for a process that runs %d s: state %s (exit code %d), want running: a paused instance made progress",
			time.Since(pausedAt).Round(time.Millisecond), pauseRun, st.State, st.ExitCode)
	}
	if err := p.Resume(ctx(t), spec.ID); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if st := s.waitState(t, s.d, spec.ID, runtime.StateExited); st.ExitCode != 0 {
		t.Errorf("after resume the process ended with %d, want 0 (it runs its course)", st.ExitCode)
	}
	if err := p.Pause(ctx(t), spec.ID); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("pause of an exited instance: %v, want ErrNotRunning", err)
	}
	if err := p.Resume(ctx(t), spec.ID); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("resume of an exited instance: %v, want ErrNotRunning", err)
	}
	if err := p.Pause(ctx(t), s.id("pause-unknown")); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("pause of an unknown instance: %v, want ErrNotFound", err)
	}
}

// testSaveState: SaveState keeps a VM's disk and running state of one moment;
// after the guest changed its disk, RestoreState brings back the saved disk
// and the guest runs on. SnapshotDisk copies the disk of a running VM, which
// runs on. Both are ErrNotFound for an unknown instance.
func (s *suite) testSaveState(t *testing.T) {
	saver := s.d.(runtime.StateSaver) // Run registers the test only for a StateSaver
	x := s.d.(runtime.Execer)         // ... that can exec, for the vm tier
	spec := s.spec(t, "state", script.Serve(longRun))
	s.serve(t, spec)
	run := func(cmd []string, want string) {
		t.Helper()
		var out, errOut strings.Builder
		code, err := x.Exec(ctx(t), spec.ID, cmd, nil, &out, &errOut)
		if err != nil || code != 0 || out.String() != want {
			t.Fatalf("exec %q: code %d, stdout %q, stderr %q, %v; want 0 and %q", cmd, code, out.String(), errOut.String(), err, want)
		}
	}
	run(script.WriteFile("/marker", "before"), "")
	dir := t.TempDir()
	saved, err := saver.SaveState(ctx(t), spec.ID, filepath.Join(dir, "saved"))
	if err != nil {
		t.Fatalf("save state: %v", err)
	}
	for _, f := range []string{saved.Memory, saved.Disk} {
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("saved state file %q: %v", f, err)
		}
	}
	run(script.WriteFile("/marker", "after"), "")
	run(script.ReadFile("/marker"), "after\n")

	disk := filepath.Join(dir, "disk.qcow2")
	if err := saver.SnapshotDisk(ctx(t), spec.ID, disk); err != nil {
		t.Fatalf("snapshot the disk: %v", err)
	}
	if fi, err := os.Stat(disk); err != nil || fi.Size() == 0 {
		t.Errorf("disk snapshot %s: %v", disk, err)
	}
	run(script.ReadFile("/marker"), "after\n") // the guest runs on

	if err := saver.RestoreState(ctx(t), spec.ID, saved); err != nil {
		t.Fatalf("restore state: %v", err)
	}
	if st, err := s.d.Status(ctx(t), spec.ID); err != nil || st.State != runtime.StateRunning {
		t.Fatalf("after the restore: %+v, %v; want running", st, err)
	}
	run(script.ReadFile("/marker"), "before\n")

	if _, err := saver.SaveState(ctx(t), s.id("state-unknown"), filepath.Join(dir, "unknown")); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("save the state of an unknown instance: %v, want ErrNotFound", err)
	}
	if err := saver.SnapshotDisk(ctx(t), s.id("state-unknown"), filepath.Join(dir, "unknown.qcow2")); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("snapshot the disk of an unknown instance: %v, want ErrNotFound", err)
	}
}
