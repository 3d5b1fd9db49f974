package containerd

import (
	"context"

	"strata.dev/strata/internal/runtime"
)

// ShimStats returns instance id's usage as its shim reports it, without the
// fallback to the cgroup files, for the tests to see which source answers.
func ShimStats(ctx context.Context, d *Driver, id string) (runtime.Stats, error) {
	c, _, err := d.load(ctx, id)
	if err != nil {
		return runtime.Stats{}, err
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return runtime.Stats{}, err
	}
	return taskStats(ctx, task)
}
