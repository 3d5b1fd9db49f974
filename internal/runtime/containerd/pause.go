package containerd

import (
	"context"
	"fmt"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/errdefs"

	"strata.dev/strata/internal/runtime"
)

var _ runtime.Pauser = (*Driver)(nil)

// Pause implements runtime.Pauser: the task's processes are frozen (the cgroup
// freezer for runc; runsc stops the sandbox's tasks).
func (d *Driver) Pause(ctx context.Context, id string) error {
	return d.withTask(ctx, id, "pause", func(t taskPauser) error { return t.Pause(ctx) })
}

// Resume implements runtime.Pauser.
func (d *Driver) Resume(ctx context.Context, id string) error {
	return d.withTask(ctx, id, "resume", func(t taskPauser) error { return t.Resume(ctx) })
}

type taskPauser interface {
	Pause(context.Context) error
	Resume(context.Context) error
}

func (d *Driver) withTask(ctx context.Context, id, what string, fn func(taskPauser) error) error {
	c, _, err := d.load(ctx, id)
	if err != nil {
		return err
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("%w: instance %q", runtime.ErrNotRunning, id)
	}
	if err != nil {
		return fmt.Errorf("%s instance %q: load task: %w", what, id, err)
	}
	// The task of an exited main process stays until Remove: it cannot be paused.
	if st, err := task.Status(ctx); err == nil && st.Status == ctr.Stopped {
		return fmt.Errorf("%w: instance %q", runtime.ErrNotRunning, id)
	}
	if err := fn(task); err != nil {
		return fmt.Errorf("%s instance %q: %w", what, id, err)
	}
	return nil
}
