package fake

import (
	"fmt"
	"slices"
)

// Op names a driver operation that the Host records and that a test can make
// fail: the ones that code outside the controllers (snapshots, backups) calls
// in an order that matters.
type Op string

// The recorded operations. A Call's ID is the instance ID, except for
// OpRestoreSlotDisk, whose ID is the slot's disk directory.
const (
	OpExec            Op = "exec"
	OpPause           Op = "pause"
	OpResume          Op = "resume"
	OpSaveRootfs      Op = "save-rootfs"
	OpSnapshotDisk    Op = "snapshot-disk"
	OpSaveState       Op = "save-state"
	OpRestoreState    Op = "restore-state"
	OpRestoreSlotDisk Op = "restore-slot-disk"
)

// Call is one recorded operation: what was asked and whether it failed.
type Call struct {
	Op  Op
	ID  string
	Err error
}

// String is "OP ID", with " failed" when the call failed.
func (c Call) String() string {
	if c.Err != nil {
		return string(c.Op) + " " + c.ID + " failed"
	}
	return string(c.Op) + " " + c.ID
}

// maxCalls bounds the call log: the oldest calls are dropped beyond it.
const maxCalls = 4096

type opKey struct {
	op Op
	id string
}

// Fail makes the next call of op for id fail with an error wrapping err,
// before it has any effect. For OpRestoreSlotDisk, id is the disk directory.
func (h *Host) Fail(op Op, id string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failOp == nil {
		h.failOp = map[opKey]error{}
	}
	h.failOp[opKey{op, id}] = err
}

// Calls returns the recorded operations, oldest first (at most the last 4096).
func (h *Host) Calls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// OnCall makes the host call fn with every operation it records, as the call
// begins (Err is the injected failure, if any), so that a test can look at the
// world outside the driver at that moment (is the workload held?). fn runs
// while the host is locked: it must not call the host or its drivers. nil
// stops the calls.
func (h *Host) OnCall(fn func(Call)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onCall = fn
}

// ResetCalls forgets the recorded operations.
func (h *Host) ResetCalls() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = nil
}

// call records op on id and returns the failure injected for it, if any.
// Callers hold h.mu.
func (h *Host) call(op Op, id string) error {
	var err error
	if injected, ok := h.failOp[opKey{op, id}]; ok {
		delete(h.failOp, opKey{op, id})
		err = fmt.Errorf("%s %q: %w", op, id, injected)
	}
	h.record(op, id, err)
	return err
}

// record appends a call to the log. Callers hold h.mu.
func (h *Host) record(op Op, id string, err error) {
	if len(h.calls) >= maxCalls {
		h.calls = slices.Delete(h.calls, 0, len(h.calls)-maxCalls+1)
	}
	h.calls = append(h.calls, Call{Op: op, ID: id, Err: err})
	if h.onCall != nil {
		h.onCall(Call{Op: op, ID: id, Err: err})
	}
}

// fail marks the last recorded call as failed with err and returns err.
// Callers hold h.mu.
func (h *Host) fail(err error) error {
	if err != nil && len(h.calls) > 0 && h.calls[len(h.calls)-1].Err == nil {
		h.calls[len(h.calls)-1].Err = err
	}
	return err
}
