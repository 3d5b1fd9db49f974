package fake

import (
	"context"
	"fmt"

	"strata.dev/strata/internal/runtime"
)

var _ runtime.StatsReader = (*Driver)(nil)

// fakeMemoryBytes is what an instance without a memory limit is said to hold.
const fakeMemoryBytes = 4 << 20

// Stats implements runtime.StatsReader with a model that depends only on
// the host's clock: a running instance keeps one CPU busy (CPUSeconds is the
// time since it started, less the time it was paused) and holds its memory
// limit (4 MiB without one).
func (d *Driver) Stats(ctx context.Context, id string) (runtime.Stats, error) {
	if err := d.check(ctx); err != nil {
		return runtime.Stats{}, err
	}
	d.host.mu.Lock()
	defer d.host.mu.Unlock()
	in, err := d.lookup(id)
	if err != nil {
		return runtime.Stats{}, err
	}
	if in.state != runtime.StateRunning {
		return runtime.Stats{}, fmt.Errorf("instance %q: %w", id, runtime.ErrNotRunning)
	}
	mem := in.spec.MemoryBytes
	if mem <= 0 {
		mem = fakeMemoryBytes
	}
	now := d.host.clock.Now()
	busy := now.Sub(in.startedAt) - in.pausedFor
	if in.paused {
		busy -= now.Sub(in.pausedAt)
	}
	return runtime.Stats{CPUSeconds: busy.Seconds(), MemoryBytes: mem}, nil
}
