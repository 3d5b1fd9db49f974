package drivertest

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
)

// longRun is how long the suite's long-running commands would run if nothing
// stopped them.
const longRun = 600

// serve starts a Serve instance and waits until its SIGTERM handler is set.
func (s *suite) serve(t *testing.T, spec runtime.InstanceSpec) runtime.Status {
	t.Helper()
	st := s.start(t, spec)
	s.waitLog(t, spec.LogPath, script.ServeReady)
	return st
}

func (s *suite) testStartRunning(t *testing.T) {
	spec := s.spec(t, "running", script.Serve(longRun))
	spec.Slot = 3
	started := s.serve(t, spec)
	s.checkRunning(t, started, spec)
	now, err := s.d.Status(ctx(t), spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	s.checkRunning(t, now, spec)
	if now.PID != started.PID || !now.StartedAt.Equal(started.StartedAt) {
		t.Errorf("status changed while running: pid %d -> %d, startedAt %v -> %v", started.PID, now.PID, started.StartedAt, now.StartedAt)
	}
	img, err := runtime.NormalizeImage(spec.Image)
	if err != nil {
		t.Fatal(err)
	}
	if now.Image != img {
		t.Errorf("status image %q, want %q", now.Image, img)
	}

	st := s.stop(t, s.d, spec.ID, time.Minute)
	if st.ExitCode != 143 || st.OOMKilled {
		t.Errorf("after stop: exit code %d, oomKilled %v; want 143 (the SIGTERM handler's code), false", st.ExitCode, st.OOMKilled)
	}
	if st.PID != 0 {
		t.Errorf("after stop: PID %d, want 0", st.PID)
	}
	if st.FinishedAt.Before(st.StartedAt) || st.FinishedAt.IsZero() {
		t.Errorf("after stop: startedAt %v, finishedAt %v", st.StartedAt, st.FinishedAt)
	}
	s.remove(t, s.d, spec.ID)
	if s.caps.HostPID {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", started.PID)); err == nil {
			t.Errorf("process %d still exists after remove", started.PID)
		}
	}
}

func (s *suite) testExitCode(t *testing.T) {
	for _, code := range []int{0, 3, 255} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			spec := s.spec(t, fmt.Sprintf("exit-%d", code), script.Exit(code))
			s.start(t, spec)
			st := s.waitState(t, s.d, spec.ID, runtime.StateExited)
			if st.ExitCode != code || st.OOMKilled {
				t.Errorf("exit code %d, oomKilled %v; want %d, false", st.ExitCode, st.OOMKilled, code)
			}
			if st.PID != 0 || st.FinishedAt.IsZero() || st.FinishedAt.Before(st.StartedAt) {
				t.Errorf("exited: pid %d, startedAt %v, finishedAt %v", st.PID, st.StartedAt, st.FinishedAt)
			}
			// Stopping an exited instance is not an error and changes nothing.
			if err := s.d.Stop(ctx(t), spec.ID, time.Second); err != nil {
				t.Errorf("stop of an exited instance: %v", err)
			}
			again, err := s.d.Status(ctx(t), spec.ID)
			if err != nil || again.State != runtime.StateExited || again.ExitCode != code {
				t.Errorf("after a second stop: %+v, %v", again, err)
			}
			s.remove(t, s.d, spec.ID)
			if err := s.d.Remove(ctx(t), spec.ID); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("second remove: %v, want ErrNotFound", err)
			}
		})
	}
}

func (s *suite) testStopWithinGrace(t *testing.T) {
	spec := s.spec(t, "grace", script.Serve(longRun))
	s.serve(t, spec)
	// The handler exits with 143 at once; a kill after the grace would give 137.
	st := s.stop(t, s.d, spec.ID, 2*time.Minute)
	if st.ExitCode != 143 {
		t.Errorf("exit code %d, want 143 from the SIGTERM handler", st.ExitCode)
	}
}

func (s *suite) testStopKillsAfterGrace(t *testing.T) {
	spec := s.spec(t, "ignore-term", script.IgnoreTerm(longRun))
	s.start(t, spec)
	s.waitLog(t, spec.LogPath, script.IgnoreTermReady)
	const grace = time.Second
	begin := time.Now()
	st := s.stop(t, s.d, spec.ID, grace)
	if took := time.Since(begin); took < grace {
		t.Errorf("stop returned after %v, before the grace of %v", took, grace)
	}
	if st.ExitCode != 137 {
		t.Errorf("exit code %d, want 137 (SIGKILL after the grace)", st.ExitCode)
	}
}

func (s *suite) testKillMainProcess(t *testing.T) {
	kill := s.opts.Kill
	if kill == nil { // Run registers the test only with HostPID then
		kill = func(_ string, pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
	}
	ev := subscribe(t, s.d)
	spec := s.spec(t, "killed", script.Serve(longRun))
	st := s.serve(t, spec)
	// Killed from outside the driver, as the kernel or an operator would.
	if err := kill(spec.ID, st.PID); err != nil {
		t.Fatalf("kill %d: %v", st.PID, err)
	}
	st = s.waitState(t, s.d, spec.ID, runtime.StateExited)
	if st.ExitCode != 137 || st.OOMKilled {
		t.Errorf("after SIGKILL of pid %d: exit code %d, oomKilled %v; want 137, false", st.PID, st.ExitCode, st.OOMKilled)
	}
	if ev != nil {
		if e := ev.wait(t, spec.ID, runtime.EventExit, s.opts.Timeout); e.ExitCode != 137 || e.OOMKilled {
			t.Errorf("exit event %+v, want code 137, not OOM-killed", e)
		}
	}
	s.remove(t, s.d, spec.ID)
}

func (s *suite) testRemoveRunning(t *testing.T) {
	spec := s.spec(t, "remove-running", script.Serve(longRun))
	s.serve(t, spec)
	if err := s.d.Remove(ctx(t), spec.ID); !errors.Is(err, runtime.ErrRunning) {
		t.Errorf("remove of a running instance: %v, want ErrRunning", err)
	}
	st, err := s.d.Status(ctx(t), spec.ID)
	if err != nil || st.State != runtime.StateRunning {
		t.Fatalf("after a refused remove: %+v, %v; want it still running", st, err)
	}
	s.stop(t, s.d, spec.ID, time.Minute)
	s.remove(t, s.d, spec.ID)
}

func (s *suite) testAlreadyExists(t *testing.T) {
	spec := s.spec(t, "exists", script.Serve(longRun))
	first := s.serve(t, spec)
	other := spec
	other.Command = script.Exit(0)
	if _, err := s.d.Start(ctx(t), other); !errors.Is(err, runtime.ErrAlreadyExists) {
		t.Errorf("second start of a running id: %v, want ErrAlreadyExists", err)
	}
	st, err := s.d.Status(ctx(t), spec.ID)
	if err != nil || st.State != runtime.StateRunning || st.PID != first.PID {
		t.Errorf("first instance after the refused start: %+v, %v; want running with pid %d", st, err, first.PID)
	}
	s.stop(t, s.d, spec.ID, time.Minute)
	if _, err := s.d.Start(ctx(t), other); !errors.Is(err, runtime.ErrAlreadyExists) {
		t.Errorf("start of an exited, not removed id: %v, want ErrAlreadyExists", err)
	}
	s.remove(t, s.d, spec.ID)
	// Once removed, the ID is free again.
	if _, err := s.startOn(t, s.d, other); err != nil {
		t.Fatalf("start after remove: %v", err)
	}
	if st := s.waitState(t, s.d, spec.ID, runtime.StateExited); st.ExitCode != 0 {
		t.Errorf("restarted instance: exit code %d, want 0", st.ExitCode)
	}
	s.remove(t, s.d, spec.ID)
}

func (s *suite) testNotFound(t *testing.T) {
	id := s.id("absent")
	if _, err := s.d.Status(ctx(t), id); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("status: %v, want ErrNotFound", err)
	}
	if err := s.d.Stop(ctx(t), id, time.Second); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("stop: %v, want ErrNotFound", err)
	}
	if err := s.d.Remove(ctx(t), id); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("remove: %v, want ErrNotFound", err)
	}
	if x, ok := s.d.(runtime.Execer); ok {
		if _, err := x.Exec(ctx(t), id, script.Exit(0), nil, nil, nil); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("exec: %v, want ErrNotFound", err)
		}
	}
}

func (s *suite) testInvalidSpec(t *testing.T) {
	tests := []struct {
		name   string
		change func(*runtime.InstanceSpec)
		want   error
	}{
		{"bad id", func(sp *runtime.InstanceSpec) { sp.ID = "Bad_ID" }, runtime.ErrInvalid},
		{"no workload", func(sp *runtime.InstanceSpec) { sp.Workload = "" }, runtime.ErrInvalid},
		{"relative mount", func(sp *runtime.InstanceSpec) {
			sp.Mounts = []runtime.Mount{{HostPath: "data", Path: "/data"}}
		}, runtime.ErrInvalid},
		{"reserved label", func(sp *runtime.InstanceSpec) {
			sp.Labels = map[string]string{runtime.LabelWorkload: "x"}
		}, runtime.ErrInvalid},
		{"absent image", func(sp *runtime.InstanceSpec) { sp.Image = "localhost/strata/absent:1" }, runtime.ErrImageNotFound},
	}
	for _, tier := range v1alpha1.Tiers {
		if !s.caps.Serves(tier) {
			tests = append(tests, struct {
				name   string
				change func(*runtime.InstanceSpec)
				want   error
			}{"tier " + string(tier), func(sp *runtime.InstanceSpec) { sp.Tier = tier }, runtime.ErrUnsupported})
		}
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := s.spec(t, fmt.Sprintf("invalid-%d", i), script.Exit(0))
			tt.change(&spec)
			s.cleanup(t, s.d, spec.ID)
			_, err := s.d.Start(ctx(t), spec)
			if !errors.Is(err, tt.want) {
				t.Fatalf("start: %v, want %v", err, tt.want)
			}
			if runtime.ValidID(spec.ID) {
				if _, err := s.d.Status(ctx(t), spec.ID); !errors.Is(err, runtime.ErrNotFound) {
					t.Errorf("a refused start left an instance: status %v", err)
				}
			}
		})
	}
}

func (s *suite) testCommandAndEnv(t *testing.T) {
	tests := []struct {
		name string
		cmd  []string
		env  map[string]string
		want string
	}{
		{"command", script.Echo("hello", "from", "strata"), nil, "hello from strata\n"},
		{"env", script.PrintEnv("GREETING", "UNSET_VAR"), map[string]string{"GREETING": "hello world", "OTHER": "x"},
			"GREETING=hello world\nUNSET_VAR=\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := s.spec(t, "cmd-"+tt.name, tt.cmd)
			spec.Env = tt.env
			s.start(t, spec)
			if st := s.waitState(t, s.d, spec.ID, runtime.StateExited); st.ExitCode != 0 {
				t.Errorf("exit code %d, want 0", st.ExitCode)
			}
			if got := s.waitLog(t, spec.LogPath, tt.want); !s.sameOutput(got, tt.want) {
				t.Errorf("log %q, want exactly %q", got, tt.want)
			}
		})
	}
}

func (s *suite) testListLabels(t *testing.T) {
	specs := make([]runtime.InstanceSpec, 2)
	for i := range specs {
		specs[i] = s.spec(t, fmt.Sprintf("list-%d", i), script.Serve(longRun))
		specs[i].Workload = "dt-list"
		specs[i].Slot = i
		specs[i].Labels = map[string]string{"app": "dt", "n": fmt.Sprint(i), "strata.dev/tenant": "shop"}
		s.serve(t, specs[i])
	}
	list, err := s.d.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(list); i++ {
		if list[i-1].ID >= list[i].ID {
			t.Errorf("list not sorted by id: %s before %s", list[i-1].ID, list[i].ID)
		}
	}
	for _, spec := range specs {
		st, ok := find(list, spec.ID)
		if !ok {
			t.Errorf("list lacks %s", spec.ID)
			continue
		}
		if st.State != runtime.StateRunning || st.Workload != spec.Workload || st.Slot != spec.Slot || st.Tier != spec.Tier {
			t.Errorf("list entry %s: state %s workload %q slot %d tier %s", st.ID, st.State, st.Workload, st.Slot, st.Tier)
		}
		if !sameLabels(st.Labels, spec.Labels) {
			t.Errorf("list entry %s: labels %v, want %v", st.ID, st.Labels, spec.Labels)
		}
	}
	for _, spec := range specs {
		s.stop(t, s.d, spec.ID, time.Minute)
		s.remove(t, s.d, spec.ID)
	}
}

func find(list []runtime.Status, id string) (runtime.Status, bool) {
	for _, st := range list {
		if st.ID == id {
			return st, true
		}
	}
	return runtime.Status{}, false
}

func sameLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
