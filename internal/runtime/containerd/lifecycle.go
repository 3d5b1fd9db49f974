package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// Stop implements runtime.Driver.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	c, _, err := d.load(ctx, id)
	if err != nil {
		return err
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil // no task: nothing runs
	}
	if err != nil {
		return fmt.Errorf("stop instance %q: load task: %w", id, err)
	}
	// Wait before signalling, so the exit cannot be missed.
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	exited, err := task.Wait(waitCtx)
	if err != nil {
		return fmt.Errorf("stop instance %q: wait: %w", id, err)
	}
	ts, err := task.Status(ctx)
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop instance %q: task status: %w", id, err)
	}
	if err != nil || ts.Status == ctr.Stopped {
		return nil
	}

	d.markStopping(id, 1)
	defer d.markStopping(id, -1)
	if err := kill(ctx, task, syscall.SIGTERM, false); err != nil {
		if exitedWithin(ctx, exited, killRace) {
			return nil
		}
		return fmt.Errorf("stop instance %q: %w", id, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop instance %q: %w", id, ctx.Err())
	case <-timer.C:
	}
	if grace > 0 {
		d.log.Info("instance did not end within its grace; killing it", "instance", id, "grace", grace)
	}
	if err := kill(ctx, task, syscall.SIGKILL, true); err != nil {
		if exitedWithin(ctx, exited, killRace) {
			return nil
		}
		return fmt.Errorf("stop instance %q: %w", id, err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop instance %q: wait after SIGKILL: %w", id, ctx.Err())
	}
}

// killRace bounds how long Stop waits for an exit that explains a failed
// signal.
const killRace = 5 * time.Second

// kill signals the task's main process (all its processes with all). A
// process that has already ended is not an error for runc ("not found");
// runsc reports it as an unknown error ("sandbox is not running"), which
// the caller forgives when the task exits (exitedWithin).
func kill(ctx context.Context, task ctr.Task, sig syscall.Signal, all bool) error {
	var opts []ctr.KillOpts
	if all {
		opts = append(opts, ctr.WithKillAll)
	}
	err := task.Kill(ctx, sig, opts...)
	if err == nil || errdefs.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("send %s: %w", sig, err)
}

// exitedWithin reports whether the task's exit arrives on exited within d.
func exitedWithin(ctx context.Context, exited <-chan ctr.ExitStatus, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-exited:
		return true
	case <-timer.C:
	case <-ctx.Done():
	}
	return false
}

func (d *Driver) markStopping(id string, delta int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopping[id] += delta
	if d.stopping[id] <= 0 {
		delete(d.stopping, id)
	}
}

// Remove implements runtime.Driver.
func (d *Driver) Remove(ctx context.Context, id string) error {
	unlock := d.lockID(id)
	defer unlock()
	c, _, err := d.load(ctx, id)
	if err != nil {
		return err
	}
	task, err := c.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("remove instance %q: load task: %w", id, err)
	default:
		ts, err := task.Status(ctx)
		if err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove instance %q: task status: %w", id, err)
		}
		if err == nil && ts.Status != ctr.Stopped && ts.Status != ctr.Created && ts.Status != ctr.Unknown {
			return fmt.Errorf("remove instance %q: %w (task %s); stop it first", id, runtime.ErrRunning, ts.Status)
		}
		if err := deleteTask(ctx, task, err == nil && ts.Status == ctr.Stopped); err != nil {
			return fmt.Errorf("remove instance %q: %w", id, err)
		}
	}
	if err := c.Delete(ctx, ctr.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove instance %q: delete container: %w", id, err)
	}
	// runsc bind-mounts an empty network namespace into a sandbox's root
	// (null-netns), stacked when sandboxes start at once: unmount them all, or
	// the root cannot be removed.
	nullNetNS := filepath.Join(d.runtimeRoot(v1alpha1.TierSandbox, id), d.cfg.Namespace, "null-netns")
	for syscall.Unmount(nullNetNS, syscall.MNT_DETACH) == nil {
	}
	// runc removes its state with the task; a runtime killed mid-way may
	// leave its directory behind, and a sandbox's root is its own.
	for _, dir := range []string{d.runtimeDir(v1alpha1.TierContainer), d.runtimeDir(v1alpha1.TierSandbox)} {
		if err := os.RemoveAll(dir + "/" + id); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("removing runtime state", "instance", id, "err", err)
		}
	}
	return nil
}

// deleteTask deletes a task. A task that never started (created) or whose
// state is lost (unknown) is killed first; an exited one is not, because
// runsc fails to signal a sandbox that is gone.
func deleteTask(ctx context.Context, task ctr.Task, exited bool) error {
	var err error
	if exited {
		_, err = task.Delete(ctx)
	} else if _, err = task.Delete(ctx, ctr.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		_, err = task.Delete(ctx)
	}
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete task: %w", err)
	}
	return nil
}
