package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	v1 "github.com/containerd/containerd/metrics/types/v1"
	v2 "github.com/containerd/containerd/metrics/types/v2"
	"github.com/containerd/typeurl/v2"

	"strata.dev/strata/internal/runtime"
)

var _ runtime.StatsReader = (*Driver)(nil)

// Stats implements runtime.StatsReader from the task's cgroup: the shim's
// metrics (cgroup v1 or v2, whichever the host has) when they say anything,
// else the cgroup files under /sys/fs/cgroup at the instance's cgroups path
// (what a sandbox's shim may leave empty). CPU is the cgroup's total usage;
// memory is its usage, page cache included, as the memory limit counts it.
func (d *Driver) Stats(ctx context.Context, id string) (runtime.Stats, error) {
	c, _, err := d.load(ctx, id)
	if err != nil {
		return runtime.Stats{}, err
	}
	notRunning := fmt.Errorf("instance %q: %w", id, runtime.ErrNotRunning)
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return runtime.Stats{}, notRunning
	}
	if err != nil {
		return runtime.Stats{}, fmt.Errorf("instance %q: load task: %w", id, err)
	}
	ts, err := task.Status(ctx)
	if errdefs.IsNotFound(err) {
		return runtime.Stats{}, notRunning
	}
	if err != nil {
		return runtime.Stats{}, fmt.Errorf("instance %q: task status: %w", id, err)
	}
	if ts.Status != ctr.Running && ts.Status != ctr.Paused && ts.Status != ctr.Pausing {
		return runtime.Stats{}, notRunning
	}
	st, merr := taskStats(ctx, task)
	if merr == nil && (st.CPUSeconds > 0 || st.MemoryBytes > 0) {
		return st, nil
	}
	st, cerr := d.cgroupStats(id)
	if cerr != nil {
		return runtime.Stats{}, fmt.Errorf("instance %q: no usage from the shim (%w) nor from its cgroup: %w", id, orEmpty(merr), cerr)
	}
	return st, nil
}

// taskStats asks the task's shim for its cgroup's metrics.
func taskStats(ctx context.Context, task ctr.Task) (runtime.Stats, error) {
	m, err := task.Metrics(ctx)
	if err != nil {
		return runtime.Stats{}, fmt.Errorf("task metrics: %w", err)
	}
	if m.Data == nil {
		return runtime.Stats{}, errors.New("task metrics: empty")
	}
	data, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return runtime.Stats{}, fmt.Errorf("task metrics: decode %s: %w", m.Data.GetTypeUrl(), err)
	}
	var st runtime.Stats
	switch m := data.(type) {
	case *v1.Metrics:
		if m.CPU != nil && m.CPU.Usage != nil {
			st.CPUSeconds = float64(m.CPU.Usage.Total) / 1e9
		}
		if m.Memory != nil && m.Memory.Usage != nil {
			st.MemoryBytes = int64(m.Memory.Usage.Usage)
		}
	case *v2.Metrics:
		if m.CPU != nil {
			st.CPUSeconds = float64(m.CPU.UsageUsec) / 1e6
		}
		if m.Memory != nil {
			st.MemoryBytes = int64(m.Memory.Usage)
		}
	default:
		return runtime.Stats{}, fmt.Errorf("task metrics: unknown type %T", data)
	}
	return st, nil
}

// cgroupStats reads the instance's usage from its cgroup files.
func (d *Driver) cgroupStats(id string) (runtime.Stats, error) {
	if d.cgroup.memoryRoot == "" {
		return runtime.Stats{}, errors.New("the host's cgroups are unknown")
	}
	path := d.cgroupsPath(id)
	if d.cgroup.v2 {
		dir := filepath.Join(d.cgroup.memoryRoot, path)
		usec, err := keyedValue(filepath.Join(dir, "cpu.stat"), "usage_usec")
		if err != nil {
			return runtime.Stats{}, err
		}
		mem, err := readUint(filepath.Join(dir, "memory.current"))
		if err != nil {
			return runtime.Stats{}, err
		}
		return runtime.Stats{CPUSeconds: float64(usec) / 1e6, MemoryBytes: int64(mem)}, nil
	}
	root := filepath.Dir(d.cgroup.memoryRoot)
	ns, err := readUint(filepath.Join(root, "cpuacct", path, "cpuacct.usage"))
	if err != nil {
		return runtime.Stats{}, err
	}
	mem, err := readUint(filepath.Join(d.cgroup.memoryRoot, path, "memory.usage_in_bytes"))
	if err != nil {
		return runtime.Stats{}, err
	}
	return runtime.Stats{CPUSeconds: float64(ns) / 1e9, MemoryBytes: int64(mem)}, nil
}

// readUint reads a cgroup file that holds one number.
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// keyedValue reads the value of key from a cgroup file of "KEY VALUE" lines.
func keyedValue(path, key string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) == 2 && string(f[0]) == key {
			n, err := strconv.ParseUint(string(f[1]), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %s: %w", path, key, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// orEmpty keeps a nil error printable inside another error's message.
func orEmpty(err error) error {
	if err == nil {
		return errors.New("it reported zero use")
	}
	return err
}
