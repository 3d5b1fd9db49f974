package runtime

import (
	"time"

	"strata.dev/strata/api/v1alpha1"
)

// State is where an instance is in its life. The values are those of a
// Workload's status.instances[].state.
type State string

// The states of an instance.
const (
	// StateCreating: the instance exists but its main process has not
	// started yet.
	StateCreating State = "creating"
	// StateRunning: the main process runs.
	StateRunning State = "running"
	// StateStopping: Stop has asked the main process to end and waits for it.
	StateStopping State = "stopping"
	// StateExited: the main process has ended; ExitCode, FinishedAt and
	// OOMKilled say how.
	StateExited State = "exited"
	// StateFailed: the driver cannot run or observe the instance (for
	// example its container has no task, or the runtime reports an unknown
	// state); Message says why. Remove clears it.
	StateFailed State = "failed"
)

// Status is what a driver observes about one instance.
type Status struct {
	ID       string
	Workload string
	Slot     int
	Tier     v1alpha1.Tier
	Image    string
	State    State

	// PID is the host PID of the instance's init process (the container's
	// main process, the sandbox's runsc process or the QEMU process) while
	// it runs; 0 otherwise.
	PID int
	// ExitCode is the main process's exit status once exited: its code, or
	// 128+N when signal N ended it.
	ExitCode int
	// OOMKilled reports, once exited, that the kernel killed a process of
	// the instance because the memory limit was reached.
	OOMKilled bool

	StartedAt  time.Time // when the main process started; zero before
	FinishedAt time.Time // when the main process ended; zero before
	Message    string    // a human explanation of the state, if any
	Labels     map[string]string
}

// EventType says what happened to an instance.
type EventType string

// The event types.
const (
	// EventExit: the main process ended; the event carries ExitCode and
	// OOMKilled as Status would report them.
	EventExit EventType = "exit"
	// EventOOM: the kernel killed a process of the instance for memory. An
	// EventExit follows when it was the main process.
	EventOOM EventType = "oom"
)

// Event is one thing that happened to an instance.
type Event struct {
	Type      EventType
	ID        string // the instance ID
	Time      time.Time
	ExitCode  int  // EventExit only
	OOMKilled bool // EventExit only
}
