package containerd

import (
	"context"
	"errors"
	"fmt"
	"sort"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"

	"strata.dev/strata/internal/runtime"
)

// load returns the owned container id, or an error wrapping
// runtime.ErrNotFound.
func (d *Driver) load(ctx context.Context, id string) (ctr.Container, containers.Container, error) {
	if err := d.check(ctx); err != nil {
		return nil, containers.Container{}, err
	}
	notFound := fmt.Errorf("instance %q: %w", id, runtime.ErrNotFound)
	if !runtime.ValidID(id) {
		return nil, containers.Container{}, notFound
	}
	c, err := d.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, containers.Container{}, notFound
	}
	if err != nil {
		return nil, containers.Container{}, fmt.Errorf("instance %q: load container: %w", id, err)
	}
	info, err := c.Info(ctx, ctr.WithoutRefreshedMetadata)
	if err != nil {
		return nil, containers.Container{}, fmt.Errorf("instance %q: container info: %w", id, err)
	}
	if info.Labels[labelDriver] != Name {
		return nil, containers.Container{}, notFound
	}
	return c, info, nil
}

// Status implements runtime.Driver.
func (d *Driver) Status(ctx context.Context, id string) (runtime.Status, error) {
	c, info, err := d.load(ctx, id)
	if err != nil {
		return runtime.Status{}, err
	}
	return d.status(ctx, c, info)
}

// List implements runtime.Driver.
func (d *Driver) List(ctx context.Context) ([]runtime.Status, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	cs, err := d.client.Containers(ctx, ownedFilter)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]runtime.Status, 0, len(cs))
	for _, c := range cs {
		info, err := c.Info(ctx, ctr.WithoutRefreshedMetadata)
		if errdefs.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list: container %s: %w", c.ID(), err)
		}
		st, err := d.status(ctx, c, info)
		if errors.Is(err, runtime.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// status observes container c (whose info is given) and its task.
func (d *Driver) status(ctx context.Context, c ctr.Container, info containers.Container) (runtime.Status, error) {
	ident := parseLabels(info.Labels)
	st := runtime.Status{
		ID:        info.ID,
		Workload:  ident.workload,
		Slot:      ident.slot,
		Tier:      ident.tier,
		Image:     info.Image,
		StartedAt: ident.startedAt,
		Labels:    ident.labels,
	}
	if st.StartedAt.IsZero() {
		st.StartedAt = info.CreatedAt
	}
	d.mu.Lock()
	starting, stopping := d.starting[info.ID], d.stopping[info.ID] > 0
	d.mu.Unlock()

	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		if starting {
			st.State = runtime.StateCreating
			return st, nil
		}
		st.State = runtime.StateFailed
		st.Message = "the container has no task (its start was interrupted, or containerd lost it); remove the instance"
		return st, nil
	}
	if err != nil {
		return runtime.Status{}, fmt.Errorf("instance %q: load task: %w", info.ID, err)
	}
	ts, err := task.Status(ctx)
	if errdefs.IsNotFound(err) {
		return runtime.Status{}, fmt.Errorf("instance %q: %w", info.ID, runtime.ErrNotFound)
	}
	if err != nil {
		return runtime.Status{}, fmt.Errorf("instance %q: task status: %w", info.ID, err)
	}
	switch ts.Status {
	case ctr.Created:
		st.State = runtime.StateCreating
	case ctr.Running, ctr.Paused, ctr.Pausing:
		st.State = runtime.StateRunning
		if stopping {
			st.State = runtime.StateStopping
		}
		st.PID = int(task.Pid())
		if ts.Status != ctr.Running {
			st.Message = "paused"
		}
	case ctr.Stopped:
		st.State = runtime.StateExited
		st.ExitCode = int(ts.ExitStatus)
		st.FinishedAt = ts.ExitTime
		st.OOMKilled = ident.oom || d.oomKills(info.ID) > 0
		if st.OOMKilled {
			st.Message = "a process was killed for exceeding the memory limit"
		}
	default:
		st.State = runtime.StateFailed
		st.Message = fmt.Sprintf("containerd reports task status %q", ts.Status)
	}
	return st, nil
}
