package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/containerd/api/services/tasks/v1"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// cfsPeriod is the CFS period CPU quotas are expressed in (100 ms).
const cfsPeriod = 100_000

// cleanupTimeout bounds the undoing of a failed Start.
const cleanupTimeout = 30 * time.Second

// Start implements runtime.Driver.
func (d *Driver) Start(ctx context.Context, spec runtime.InstanceSpec) (runtime.Status, error) {
	if err := d.check(ctx); err != nil {
		return runtime.Status{}, err
	}
	if err := runtime.ValidateSpec(spec); err != nil {
		return runtime.Status{}, err
	}
	if !d.Capabilities().Serves(spec.Tier) {
		hint := ""
		if spec.Tier == v1alpha1.TierSandbox {
			hint = " (runsc is not configured: build it with `make host-setup`)"
		}
		return runtime.Status{}, fmt.Errorf("instance %q: tier %s: %w by the containerd driver%s", spec.ID, spec.Tier, runtime.ErrUnsupported, hint)
	}
	for i, m := range spec.Mounts {
		if _, err := os.Stat(m.HostPath); err != nil {
			return runtime.Status{}, fmt.Errorf("instance %q: %w: mounts[%d]: %w", spec.ID, runtime.ErrInvalid, i, err)
		}
	}
	confine, err := confinement(spec)
	if err != nil {
		return runtime.Status{}, fmt.Errorf("instance %q: %w", spec.ID, err)
	}

	unlock := d.lockID(spec.ID)
	defer unlock()
	if _, err := d.client.LoadContainer(ctx, spec.ID); err == nil {
		return runtime.Status{}, fmt.Errorf("instance %q: %w", spec.ID, runtime.ErrAlreadyExists)
	} else if !errdefs.IsNotFound(err) {
		return runtime.Status{}, fmt.Errorf("instance %q: load container: %w", spec.ID, err)
	}
	img, err := d.image(ctx, spec.Image)
	if err != nil {
		return runtime.Status{}, fmt.Errorf("instance %q: %w", spec.ID, err)
	}
	if err := d.removeStaleSnapshot(ctx, spec.ID); err != nil {
		return runtime.Status{}, err
	}
	if spec.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o750); err != nil {
			return runtime.Status{}, fmt.Errorf("instance %q: log directory: %w", spec.ID, err)
		}
	}

	d.setStarting(spec.ID, true)
	defer d.setStarting(spec.ID, false)
	c, err := d.client.NewContainer(ctx, spec.ID,
		ctr.WithImage(img),
		ctr.WithSnapshotter(d.cfg.Snapshotter),
		ctr.WithNewSnapshot(spec.ID, img),
		ctr.WithRuntime(shimRuntime, &runcoptions.Options{
			BinaryName: d.binary(spec.Tier),
			Root:       d.runtimeRoot(spec.Tier, spec.ID),
		}),
		ctr.WithContainerLabels(containerLabels(spec)),
		ctr.WithNewSpec(append(d.specOpts(img, spec), confine...)...),
	)
	if errdefs.IsAlreadyExists(err) {
		return runtime.Status{}, fmt.Errorf("instance %q: %w", spec.ID, runtime.ErrAlreadyExists)
	}
	if err != nil {
		// The snapshot may have been made before the container failed (a context that
		// ended between the two, say): remove it on a context of its own.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if derr := d.removeStaleSnapshot(cctx, spec.ID); derr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", derr))
		}
		return runtime.Status{}, fmt.Errorf("instance %q: create container: %w", spec.ID, err)
	}
	err = nil
	if spec.RootfsLayer != "" {
		err = d.applyRootfsLayer(ctx, c, spec.RootfsLayer)
	}
	if err == nil {
		err = d.startTask(ctx, c, spec)
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if derr := c.Delete(cctx, ctr.WithSnapshotCleanup); derr != nil {
			err = errors.Join(err, fmt.Errorf("undo: delete container: %w", derr))
		}
		return runtime.Status{}, fmt.Errorf("instance %q: %w", spec.ID, err)
	}
	info, err := c.Info(ctx) // refreshed: the start time label is new
	if err != nil {
		return runtime.Status{}, fmt.Errorf("instance %q: container info: %w", spec.ID, err)
	}
	return d.status(ctx, c, info)
}

// startTask creates and starts the container's task and records the start
// time; on failure it deletes the task again.
func (d *Driver) startTask(ctx context.Context, c ctr.Container, spec runtime.InstanceSpec) error {
	ioc := cio.NullIO
	if spec.LogPath != "" {
		ioc = cio.LogFile(spec.LogPath)
	}
	task, err := c.NewTask(ctx, ioc)
	if errdefs.IsAlreadyExists(err) {
		// A task of that ID outlived its container (a removal interrupted halfway): it
		// runs nothing strata knows of, so end it and try once more.
		if derr := d.deleteStaleTask(ctx, spec.ID); derr != nil {
			return fmt.Errorf("create task: %w (and the stale task could not be removed: %w)", err, derr)
		}
		task, err = c.NewTask(ctx, ioc)
	}
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	started := time.Now()
	err = task.Start(ctx)
	if err == nil {
		_, err = c.SetLabels(ctx, map[string]string{labelStartedAt: started.UTC().Format(time.RFC3339Nano)})
		if err != nil {
			err = fmt.Errorf("record start time: %w", err)
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			_ = task.Kill(cctx, syscall.SIGKILL, ctr.WithKillAll)
		}
	} else {
		err = fmt.Errorf("start task: %w", err)
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, derr := task.Delete(cctx, ctr.WithProcessKill); derr != nil {
			err = errors.Join(err, fmt.Errorf("undo: delete task: %w", derr))
		}
		return err
	}
	return nil
}

// binary is the OCI runtime binary the shim runs for tier ("" for the shim's
// default, runc).
func (d *Driver) binary(tier v1alpha1.Tier) string {
	if tier == v1alpha1.TierSandbox {
		return d.cfg.Runsc
	}
	return ""
}

// specOpts builds the OCI spec of an instance from the image's config and the
// instance spec.
func (d *Driver) specOpts(img ctr.Image, spec runtime.InstanceSpec) []oci.SpecOpts {
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithHostname(spec.ID),
		oci.WithCgroup(d.cgroupsPath(spec.ID)),
	}
	if len(spec.Command) > 0 {
		opts = append(opts, oci.WithProcessArgs(spec.Command...))
	}
	if len(spec.Env) > 0 {
		keys := make([]string, 0, len(spec.Env))
		for k := range spec.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		env := make([]string, len(keys))
		for i, k := range keys {
			env[i] = k + "=" + spec.Env[k]
		}
		opts = append(opts, oci.WithEnv(env))
	}
	if len(spec.Mounts) > 0 {
		ms := make([]specs.Mount, len(spec.Mounts))
		for i, m := range spec.Mounts {
			mode := "rw"
			if m.ReadOnly {
				mode = "ro"
			}
			ms[i] = specs.Mount{
				Type: "bind", Source: m.HostPath, Destination: m.Path,
				Options: []string{"rbind", "rprivate", mode},
			}
		}
		opts = append(opts, oci.WithMounts(ms))
	}
	if spec.MemoryBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(spec.MemoryBytes)))
		if d.cgroup.swapLimit {
			// memory+swap equal to memory: no swap beyond the limit.
			opts = append(opts, oci.WithMemorySwap(spec.MemoryBytes))
		}
	}
	if spec.CPUMilli > 0 {
		quota := spec.CPUMilli * cfsPeriod / 1000
		quota = max(quota, 1000) // the kernel's minimum quota is 1 ms
		shares := max(uint64(spec.CPUMilli)*1024/1000, 2)
		opts = append(opts, oci.WithCPUCFS(quota, cfsPeriod), oci.WithCPUShares(shares))
	}
	if spec.NetNS != "" {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: spec.NetNS}))
	}
	return opts
}

// removeStaleSnapshot removes a snapshot named id that no container uses: a
// Start interrupted between making the snapshot and the container leaves
// one, and it would block every later Start of the ID.
func (d *Driver) removeStaleSnapshot(ctx context.Context, id string) error {
	sn := d.client.SnapshotService(d.cfg.Snapshotter)
	if _, err := sn.Stat(ctx, id); errdefs.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("instance %q: stat snapshot: %w", id, err)
	}
	d.log.Warn("removing a stale snapshot without container", "instance", id)
	if err := sn.Remove(ctx, id); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("instance %q: remove stale snapshot: %w", id, err)
	}
	return nil
}

func (d *Driver) setStarting(id string, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if on {
		d.starting[id] = true
	} else {
		delete(d.starting, id)
	}
}

// deleteStaleTask kills and deletes the task id directly through containerd's task service.
func (d *Driver) deleteStaleTask(ctx context.Context, id string) error {
	ts := d.client.TaskService()
	_, _ = ts.Kill(ctx, &tasks.KillRequest{ContainerID: id, Signal: uint32(syscall.SIGKILL), All: true})
	// The killed process takes a moment to end; until then containerd refuses to delete
	// its task, so try again for a while.
	deadline := time.Now().Add(staleTaskWait)
	for {
		_, err := ts.Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id})
		if err == nil || errdefs.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.log.Warn("stale task removed", "instance", id)
	return nil
}

// staleTaskWait bounds how long a stale task's killed process may take to end.
const staleTaskWait = 10 * time.Second
