package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
)

// Stop implements runtime.Driver: an ACPI power-down (an image VM's init
// then sends SIGTERM to the entrypoint), then, after grace, SIGKILL to QEMU.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	if err := d.check(); err != nil {
		return err
	}
	r, err := d.lockedRecord(id, func(r *record) bool {
		if r.Finished || r.PID == 0 {
			return false
		}
		r.Stopping = true
		return true
	})
	if err != nil || r.Finished || r.PID == 0 {
		return err
	}
	pid := r.PID
	if grace > 0 {
		pctx, cancel := context.WithTimeout(ctx, min(grace, 2*time.Second))
		err := d.runQMP(pctx, id, "system_powerdown", nil, nil)
		cancel()
		if err != nil {
			d.log.Debug("qemu driver: power-down request failed; killing after the grace", "id", id, "err", err)
		}
		d.waitExit(ctx, r, grace)
	}
	if d.alive(r) {
		if _, err := d.lockedRecord(id, func(r *record) bool { r.Killed = true; return true }); err != nil {
			return err
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill QEMU of %s (pid %d): %w", id, pid, err)
		}
		if !d.waitExit(ctx, r, 10*time.Second) {
			return fmt.Errorf("QEMU of %s (pid %d) did not end after SIGKILL", id, pid)
		}
	}
	d.waitReaped(id)
	_, err = d.lockedRecord(id, func(r *record) bool { d.settle(r); return false })
	return err
}

// lockedRecord reads id's record under its lock, settles it, lets change
// modify it and writes it back when change returns true.
func (d *Driver) lockedRecord(id string, change func(*record) bool) (*record, error) {
	if !runtime.ValidID(id) {
		return nil, fmt.Errorf("%w: instance %q", runtime.ErrNotFound, id)
	}
	unlock := d.lockID(id)
	defer unlock()
	r, err := d.readRecord(id)
	if err != nil {
		return nil, err
	}
	d.settle(r)
	if change != nil && change(r) {
		if err := d.writeRecord(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// waitExit waits up to timeout for r's QEMU process to end.
func (d *Driver) waitExit(ctx context.Context, r *record, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for d.alive(r) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// waitReaped waits (briefly) for the reaper of a QEMU this value started.
func (d *Driver) waitReaped(id string) {
	d.mu.Lock()
	done, ok := d.children[id]
	d.mu.Unlock()
	if ok {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
}

// Remove implements runtime.Driver: it deletes the instance's directory
// (overlay, sockets, initrd, exit report); the log file is the caller's.
func (d *Driver) Remove(ctx context.Context, id string) error {
	if err := d.check(); err != nil {
		return err
	}
	if !runtime.ValidID(id) {
		return fmt.Errorf("%w: instance %q", runtime.ErrNotFound, id)
	}
	unlock := d.lockID(id)
	defer unlock()
	r, err := d.readRecord(id)
	if err != nil {
		return err
	}
	d.settle(r)
	if !r.Finished && r.PID != 0 {
		return fmt.Errorf("%w: instance %q (QEMU pid %d); stop it first", runtime.ErrRunning, id, r.PID)
	}
	d.mu.Lock()
	agent := d.agents[id]
	delete(d.agents, id)
	d.mu.Unlock()
	if agent != nil {
		_ = agent.Close()
	}
	if r.Source == sourceNode {
		if err := d.endSharedDirs(id); err != nil {
			return err
		}
	}
	return os.RemoveAll(d.dir(id))
}

// Exec implements runtime.Execer for image VMs and node VMs, through strata's guest agent.
func (d *Driver) Exec(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if err := d.check(); err != nil {
		return 0, err
	}
	r, err := d.lockedRecord(id, nil)
	if err != nil {
		return 0, err
	}
	if r.Finished || r.PID == 0 {
		return 0, fmt.Errorf("%w: instance %q", runtime.ErrNotRunning, id)
	}
	if r.Source != sourceImage && r.Source != sourceNode {
		return 0, fmt.Errorf("%w: instance %q boots its own kernel or disk; exec needs strata's guest agent, which runs in image VMs and node VMs only",
			runtime.ErrUnsupported, id)
	}
	if len(cmd) == 0 {
		return 0, fmt.Errorf("%w: exec in %q: no command", runtime.ErrInvalid, id)
	}
	agent, err := d.agent(ctx, id)
	if err != nil {
		return 0, err
	}
	code, err := agent.Exec(ctx, cmd, nil, stdin, stdout, stderr)
	if err != nil && ctx.Err() == nil {
		d.dropAgent(id, agent)
		if st, serr := d.Status(ctx, id); serr == nil && st.State != runtime.StateRunning {
			return 0, fmt.Errorf("%w: instance %q", runtime.ErrNotRunning, id)
		}
	}
	return code, err
}

// agent returns a connection to the guest agent of id, dialling it (and
// waiting for the guest to be ready, up to ReadyTimeout when ctx has no
// deadline) when there is none.
func (d *Driver) agent(ctx context.Context, id string) (*guest.AgentClient, error) {
	d.mu.Lock()
	a := d.agents[id]
	d.mu.Unlock()
	if a != nil {
		return a, nil
	}
	unlock := lockPath(d.path(id, agentSocket))
	defer unlock()
	d.mu.Lock()
	a = d.agents[id]
	d.mu.Unlock()
	if a != nil {
		return a, nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.ReadyTimeout())
		defer cancel()
	}
	a, err := guest.DialAgent(ctx, d.path(id, agentSocket))
	if err != nil {
		return nil, fmt.Errorf("instance %q: guest agent: %w", id, err)
	}
	d.mu.Lock()
	d.agents[id] = a
	d.mu.Unlock()
	return a, nil
}

func (d *Driver) dropAgent(id string, a *guest.AgentClient) {
	d.mu.Lock()
	if d.agents[id] == a {
		delete(d.agents, id)
	}
	d.mu.Unlock()
	_ = a.Close()
}
