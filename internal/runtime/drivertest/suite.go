// Package drivertest is the one test suite every runtime.Driver passes, the
// fake included. Run drives a driver through the behaviours strata relies
// on: start, exit codes, a main process killed from outside, stop of a
// process that handles SIGTERM and of one that ignores it, remove, list and
// labels, error kinds, command and environment, logs, mounts, memory
// limits, exec, image import, events, re-adoption by a new driver value,
// pause and resume (runtime.Pauser), and a VM's saved state and disk
// (runtime.StateSaver). It uses only the command vocabulary of package script, which the
// busybox test image (package testimage) runs for real and the fake models.
//
// Subtests run in parallel, each with its own instance IDs, and remove what
// they start even when they fail.
package drivertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/testenv"
	"strata.dev/strata/internal/testimage"
)

// Factory returns a new Driver value on the same backend (the same
// containerd, the same fake Host) each time it is called. The suite closes
// what it gets.
type Factory func(t *testing.T) runtime.Driver

// Options tune the suite to a driver and a tier.
type Options struct {
	// Tier is the tier the suite's instances ask for (default: the first
	// tier the driver serves).
	Tier v1alpha1.Tier
	// Image is a reference to the busybox test image (package testimage)
	// present in the driver. Empty: the suite builds the image and imports it
	// itself, which needs a runtime.ImageImporter.
	Image string
	// Prefix starts every instance ID, keeping suites that share a backend
	// apart ("c", "s"). Default "t".
	Prefix string
	// Timeout bounds every wait for a state change (default 60 s).
	Timeout time.Duration
	// Leftovers reports what the driver's backend still holds of a removed
	// instance (for containerd: container, task, snapshot), one string per
	// thing; nil or empty means nothing. Optional.
	Leftovers func(t *testing.T, id string) []string
	// Kill ends an instance's main process from outside the driver, as the kernel or an
	// operator would. Default: SIGKILL to the host PID (drivers with Capabilities.HostPID).
	Kill func(id string, pid int) error
	// MaxBoots, when set, lets at most this many starts be in progress within any
	// BootTime: booting a VM under emulation costs seconds of CPU, and too many at once
	// on a small host only makes every one of them slow. Default: no limit.
	MaxBoots int
	BootTime time.Duration
	// ConsoleLog says that an instance's log is a console: besides the program's output it
	// holds lines of the system that runs the program (a VM's kernel and init). The suite
	// then wants the program's output as whole lines, in order, within the log, rather than
	// the log being exactly the output.
	ConsoleLog bool
}

// suite is one run's shared state.
type suite struct {
	opts   Options
	d      runtime.Driver
	caps   runtime.Capabilities
	make   Factory
	logDir string
	boots  chan struct{} // Options.MaxBoots tokens; nil without a limit
}

// Run runs the suite against the drivers factory makes.
func Run(t *testing.T, factory Factory, opts Options) {
	d := factory(t)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close driver: %v", err)
		}
	})
	s := &suite{opts: opts, d: d, caps: d.Capabilities(), make: factory, logDir: t.TempDir()}
	if s.opts.Tier == "" {
		if len(s.caps.Tiers) == 0 {
			t.Fatal("driver serves no tier")
		}
		s.opts.Tier = s.caps.Tiers[0]
	}
	if !s.caps.Serves(s.opts.Tier) {
		t.Fatalf("driver %q does not serve tier %s (capabilities %+v)", d.Name(), s.opts.Tier, s.caps)
	}
	if s.opts.Prefix == "" {
		s.opts.Prefix = "t"
	}
	if s.opts.Timeout == 0 {
		s.opts.Timeout = 60 * time.Second
	}
	if s.opts.MaxBoots > 0 {
		s.boots = make(chan struct{}, s.opts.MaxBoots)
	}
	if s.opts.Image == "" {
		s.opts.Image = s.importTestImage(t, "localhost/strata/drivertest:"+s.opts.Prefix)
	}

	_, execer := d.(runtime.Execer)
	_, importer := d.(runtime.ImageImporter)
	_, events := d.(runtime.EventSource)
	_, pauser := d.(runtime.Pauser)
	_, saver := d.(runtime.StateSaver)
	tests := []struct {
		name string
		run  func(t *testing.T)
		// notFor, when set, says why the test does not apply to this driver: it lacks the
		// ability the test is about (and declares so).
		notFor string
	}{
		{"StartRunning", s.testStartRunning, ""},
		{"ExitCode", s.testExitCode, ""},
		{"StopWithinGrace", s.testStopWithinGrace, ""},
		{"StopKillsAfterGrace", s.testStopKillsAfterGrace, ""},
		{"KillMainProcess", s.testKillMainProcess, unless(s.opts.Kill != nil || s.caps.HostPID, "it has no host processes to kill and the suite was given no Kill")},
		{"RemoveRunning", s.testRemoveRunning, ""},
		{"AlreadyExists", s.testAlreadyExists, ""},
		{"NotFound", s.testNotFound, ""},
		{"InvalidSpec", s.testInvalidSpec, ""},
		{"CommandAndEnv", s.testCommandAndEnv, ""},
		{"ListLabels", s.testListLabels, ""},
		{"Mounts", s.testMounts, ""},
		{"MemoryLimit", s.testMemoryLimit, unless(s.caps.Limits || s.caps.MemoryBound, "it neither enforces nor bounds memory (Capabilities)")},
		{"Exec", s.testExec, unless(execer, "it cannot exec (no runtime.Execer)")},
		{"ImportImage", s.testImportImage, unless(importer, "it imports no images (no runtime.ImageImporter)")},
		{"Events", s.testEvents, unless(events, "it has no events (no runtime.EventSource)")},
		{"Readopt", s.testReadopt, ""},
		{"Pause", s.testPause, unless(pauser, "it cannot pause (no runtime.Pauser)")},
		{"SaveState", s.testSaveState, unless(saver && execer && s.opts.Tier == v1alpha1.TierVM,
			"it saves no VM state (no runtime.StateSaver and runtime.Execer, or not the vm tier)")},
	}
	for _, tt := range tests {
		if tt.notFor != "" {
			t.Logf("%s does not apply to driver %s: %s", tt.name, d.Name(), tt.notFor)
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t)
		})
	}
}

// unless returns why when the condition does not hold, else "".
func unless(cond bool, why string) string {
	if cond {
		return ""
	}
	return why
}

// importTestImage builds the busybox test image named ref and imports it.
func (s *suite) importTestImage(t *testing.T, ref string) string {
	t.Helper()
	imp, ok := s.d.(runtime.ImageImporter)
	if !ok {
		t.Fatalf("driver %q imports no images: set Options.Image to the test image's reference", s.d.Name())
	}
	var buf bytes.Buffer
	if err := testimage.Build(&buf, ref); err != nil {
		if errors.Is(err, testimage.ErrNoBusybox) {
			testenv.Skipf(t, "skipping the driver suite: %v", err)
		}
		t.Fatal(err)
	}
	refs, err := imp.ImportImage(ctx(t), &buf)
	if err != nil {
		t.Fatalf("import the test image: %v", err)
	}
	if len(refs) != 1 {
		t.Fatalf("import the test image %s: got refs %q, want one", ref, refs)
	}
	return refs[0]
}

// ctx returns a context that ends with the test.
func ctx(t *testing.T) context.Context { return t.Context() }

// spec returns a spec for instance name (the ID gets the suite's prefix)
// running cmd.
func (s *suite) spec(t *testing.T, name string, cmd []string) runtime.InstanceSpec {
	return runtime.InstanceSpec{
		ID:       s.id(name),
		Workload: "dt-" + name,
		Slot:     0,
		Tier:     s.opts.Tier,
		Image:    s.opts.Image,
		Command:  cmd,
		LogPath:  filepath.Join(s.logDir, s.id(name)+".log"),
	}
}

func (s *suite) id(name string) string { return s.opts.Prefix + "-" + name }

// start starts spec and registers its removal at the end of the test.
func (s *suite) start(t *testing.T, spec runtime.InstanceSpec) runtime.Status {
	t.Helper()
	s.cleanup(t, s.d, spec.ID)
	st, err := s.startOn(t, s.d, spec)
	if err != nil {
		t.Fatalf("start %s: %v", spec.ID, err)
	}
	return st
}

// startOn starts spec on d within the suite's boot limit.
func (s *suite) startOn(t *testing.T, d runtime.Driver, spec runtime.InstanceSpec) (runtime.Status, error) {
	if s.boots != nil {
		select {
		case s.boots <- struct{}{}:
		case <-ctx(t).Done():
			return runtime.Status{}, ctx(t).Err()
		}
		defer time.AfterFunc(s.opts.BootTime, func() { <-s.boots })
	}
	return d.Start(ctx(t), spec)
}

// cleanup stops and removes id at the end of the test, quietly.
func (s *suite) cleanup(t *testing.T, d runtime.Driver, id string) {
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		defer cancel()
		if err := d.Stop(c, id, 0); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			t.Logf("cleanup: stop %s: %v", id, err)
		}
		if err := d.Remove(c, id); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			t.Logf("cleanup: remove %s: %v", id, err)
		}
	})
}

// waitState polls the status of id until it has state want.
func (s *suite) waitState(t *testing.T, d runtime.Driver, id string, want runtime.State) runtime.Status {
	t.Helper()
	deadline := time.Now().Add(s.opts.Timeout)
	for {
		st, err := d.Status(ctx(t), id)
		if err != nil {
			t.Fatalf("status %s: %v", id, err)
		}
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s: state %s after %v, want %s (%s)%s", id, st.State, s.opts.Timeout, want, st.Message, s.logTail(id))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logTail is the end of an instance's log, for a failure's message: a VM's console
// says what its guest did last.
func (s *suite) logTail(id string) string {
	const most = 4096
	b, err := os.ReadFile(filepath.Join(s.logDir, id+".log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > most {
		b = b[len(b)-most:]
	}
	return "; the end of its log:\n" + string(b)
}

// sameOutput reports whether a log holds exactly the output want (see Options.ConsoleLog).
func (s *suite) sameOutput(log, want string) bool {
	if !s.opts.ConsoleLog {
		return log == want
	}
	i := strings.Index(log, want)
	return i >= 0 && (i == 0 || log[i-1] == '\n')
}

// waitLog polls the log file until it holds want, and returns it.
func (s *suite) waitLog(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(s.opts.Timeout)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s: %q after %v, want it to contain %q", path, b, s.opts.Timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop stops id with grace and returns its final status.
func (s *suite) stop(t *testing.T, d runtime.Driver, id string, grace time.Duration) runtime.Status {
	t.Helper()
	if err := d.Stop(ctx(t), id, grace); err != nil {
		t.Fatalf("stop %s: %v", id, err)
	}
	st, err := d.Status(ctx(t), id)
	if err != nil {
		t.Fatalf("status %s after stop: %v", id, err)
	}
	if st.State != runtime.StateExited {
		t.Fatalf("instance %s: state %s after Stop returned, want exited", id, st.State)
	}
	return st
}

// remove removes id and checks that nothing of it remains.
func (s *suite) remove(t *testing.T, d runtime.Driver, id string) {
	t.Helper()
	if err := d.Remove(ctx(t), id); err != nil {
		t.Fatalf("remove %s: %v", id, err)
	}
	if _, err := d.Status(ctx(t), id); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("status %s after remove: %v, want ErrNotFound", id, err)
	}
	list, err := d.List(ctx(t))
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	for _, st := range list {
		if st.ID == id {
			t.Errorf("list after remove still has %s (%s)", id, st.State)
		}
	}
	if s.opts.Leftovers != nil {
		if left := s.opts.Leftovers(t, id); len(left) > 0 {
			t.Errorf("remove %s left behind: %s", id, strings.Join(left, "; "))
		}
	}
}

// checkRunning checks a status of a freshly started instance.
func (s *suite) checkRunning(t *testing.T, st runtime.Status, spec runtime.InstanceSpec) {
	t.Helper()
	if st.State != runtime.StateRunning {
		t.Fatalf("instance %s: state %s (%s), want running", spec.ID, st.State, st.Message)
	}
	if st.PID <= 0 {
		t.Errorf("instance %s: running with PID %d, want > 0", spec.ID, st.PID)
	}
	if s.caps.HostPID {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", st.PID)); err != nil {
			t.Errorf("instance %s: PID %d is not a host process: %v", spec.ID, st.PID, err)
		}
	}
	if st.ID != spec.ID || st.Workload != spec.Workload || st.Slot != spec.Slot || st.Tier != spec.Tier {
		t.Errorf("status identity: got id %q workload %q slot %d tier %q, want %q %q %d %q",
			st.ID, st.Workload, st.Slot, st.Tier, spec.ID, spec.Workload, spec.Slot, spec.Tier)
	}
	if st.StartedAt.IsZero() || !st.FinishedAt.IsZero() {
		t.Errorf("instance %s: startedAt %v finishedAt %v, want a start time and no finish time", spec.ID, st.StartedAt, st.FinishedAt)
	}
}

// events is a subscription that keeps every event for later checks.
type events struct {
	mu   sync.Mutex
	got  []runtime.Event
	more chan struct{}
}

// subscribe subscribes to d's events until the test ends; nil when d is no
// EventSource.
func subscribe(t *testing.T, d runtime.Driver) *events {
	t.Helper()
	src, ok := d.(runtime.EventSource)
	if !ok {
		return nil
	}
	c, cancel := context.WithCancel(context.Background())
	ch, err := src.Events(c)
	if err != nil {
		cancel()
		t.Fatalf("events: %v", err)
	}
	e := &events{more: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			e.mu.Lock()
			e.got = append(e.got, ev)
			e.mu.Unlock()
			select {
			case e.more <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// wait returns the first event of type typ for id, failing after timeout.
func (e *events) wait(t *testing.T, id string, typ runtime.EventType, timeout time.Duration) runtime.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		e.mu.Lock()
		for _, ev := range e.got {
			if ev.ID == id && ev.Type == typ {
				e.mu.Unlock()
				return ev
			}
		}
		e.mu.Unlock()
		select {
		case <-e.more:
		case <-deadline:
			t.Fatalf("no %s event for %s within %v", typ, id, timeout)
		}
	}
}
