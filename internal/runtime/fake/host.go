package fake

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
)

// Host is a simulated machine shared by the Driver values that view it. Its
// methods inject what would happen on a real host. Safe for concurrent use.
type Host struct {
	clock Clock
	log   *slog.Logger

	mu        sync.Mutex
	instances map[string]*instance
	images    map[string]bool
	failStart map[string]error
	unready   map[string]string // driver name -> why its probe fails
	subs      map[*subscriber]struct{}
	nextPID   int
	failOp    map[opKey]error // injected failures of recorded operations
	calls     []Call          // the recorded operations, oldest first
	onCall    func(Call)      // told of each recorded operation (OnCall)
}

// HostOptions configure a Host.
type HostOptions struct {
	Clock  Clock        // default RealClock
	Logger *slog.Logger // default slog.Default()
}

// NewHost returns an empty simulated machine.
func NewHost(opts HostOptions) *Host {
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Host{
		clock:     opts.Clock,
		log:       opts.Logger,
		instances: map[string]*instance{},
		images:    map[string]bool{},
		failStart: map[string]error{},
		subs:      map[*subscriber]struct{}{},
		nextPID:   4000,
	}
}

// Clock returns the host's clock.
func (h *Host) Clock() Clock { return h.clock }

// FailStart makes the next Start of id fail with an error wrapping err; the
// instance is not created.
func (h *Host) FailStart(id string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failStart[id] = err
}

// Exit ends the running instance id now as if its main process exited with
// code. It returns runtime.ErrNotFound or runtime.ErrNotRunning.
func (h *Host) Exit(id string, code int) error {
	return h.end(id, code, false)
}

// OOMKill ends the running instance id now as the kernel's OOM killer would:
// exit code 137, OOMKilled, an EventOOM followed by an EventExit.
func (h *Host) OOMKill(id string) error {
	return h.end(id, 137, true)
}

func (h *Host) end(id string, code int, oom bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	in, ok := h.instances[id]
	if !ok {
		return fmt.Errorf("instance %q: %w", id, runtime.ErrNotFound)
	}
	h.settle(in)
	if in.exited() {
		return fmt.Errorf("instance %q: %w", id, runtime.ErrNotRunning)
	}
	if oom {
		h.oom(in)
	}
	h.exit(in, code)
	return nil
}

// instance is one simulated instance.
type instance struct {
	spec   runtime.InstanceSpec
	image  string // normalised
	owner  string // name of the driver that started it
	script script.Script
	known  bool // the command is in the vocabulary

	state      runtime.State
	pid        int
	startedAt  time.Time
	finishedAt time.Time
	exitCode   int
	oomKills   int // OOM kills so far (of the main process or of exec'd ones)

	endsAt      time.Time // when the main process ends by itself; zero: never
	endCode     int
	termIgnored bool // SIGTERM does not end the main process

	// A paused instance makes no progress: endsAt moves on by the time it
	// was paused when it resumes.
	paused    bool
	pausedAt  time.Time
	pausedFor time.Duration // how long it was paused before, since it started

	done  chan struct{}     // closed when the main process ends
	wake  chan struct{}     // closed when the instance's course changes (rewatch)
	gen   int               // counts the changes; a watcher of an older one does nothing
	files map[string][]byte // files written outside every mount
}

func (in *instance) exited() bool { return in.state == runtime.StateExited }

// settle ends the instance if its main process has run its course by the
// host's clock. Callers hold h.mu.
func (h *Host) settle(in *instance) {
	if in.exited() || in.paused || in.endsAt.IsZero() || h.clock.Now().Before(in.endsAt) {
		return
	}
	h.exitAt(in, in.endCode, in.endsAt)
}

// exit ends the main process now with code. Callers hold h.mu.
func (h *Host) exit(in *instance, code int) { h.exitAt(in, code, h.clock.Now()) }

func (h *Host) exitAt(in *instance, code int, at time.Time) {
	if in.exited() {
		return
	}
	in.state = runtime.StateExited
	if in.paused {
		in.paused = false
		h.rewatch(in) // wakes what waits for the resume
	}
	in.exitCode = code
	in.finishedAt = at
	in.pid = 0
	close(in.done)
	h.publish(in.owner, runtime.Event{
		Type: runtime.EventExit, ID: in.spec.ID, Time: at, ExitCode: code, OOMKilled: in.oomKills > 0,
	})
}

// oom records an OOM kill in the instance. Callers hold h.mu.
func (h *Host) oom(in *instance) {
	in.oomKills++
	h.publish(in.owner, runtime.Event{Type: runtime.EventOOM, ID: in.spec.ID, Time: h.clock.Now()})
}

// watch ends the instance when its time comes, unless it ends earlier or its
// course changes (Pause, Resume, RestoreState: rewatch starts a new watcher).
func (h *Host) watch(in *instance, gen int, endsAt time.Time, done, wake <-chan struct{}) {
	if endsAt.IsZero() {
		return
	}
	select {
	case <-h.clock.After(endsAt.Sub(h.clock.Now())):
		h.mu.Lock()
		if in.gen == gen {
			h.settle(in)
		}
		h.mu.Unlock()
	case <-done:
	case <-wake:
	}
}

// rewatch tells the instance's watcher and waiters that its course changed
// and, unless it is paused or has exited, watches it anew. Callers hold h.mu.
func (h *Host) rewatch(in *instance) {
	if in.wake != nil {
		close(in.wake)
	}
	in.wake = make(chan struct{})
	in.gen++
	if !in.exited() && !in.paused {
		go h.watch(in, in.gen, in.endsAt, in.done, in.wake)
	}
}

func (in *instance) status() runtime.Status {
	s := runtime.Status{
		ID:         in.spec.ID,
		Workload:   in.spec.Workload,
		Slot:       in.spec.Slot,
		Tier:       in.spec.Tier,
		Image:      in.image,
		State:      in.state,
		PID:        in.pid,
		StartedAt:  in.startedAt,
		FinishedAt: in.finishedAt,
		Labels:     copyMap(in.spec.Labels),
	}
	if in.paused {
		s.Message = "paused"
	}
	if in.exited() {
		s.ExitCode = in.exitCode
		s.OOMKilled = in.oomKills > 0
		if s.OOMKilled {
			s.Message = "a process was killed for exceeding the memory limit"
		}
	}
	return s
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
