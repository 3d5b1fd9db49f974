package containerd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/containerd"
	"strata.dev/strata/internal/runtime/containerd/ctrdtest"
)

// TestStats runs a busy instance per tier and reads its usage: CPU time rises, memory
// is reported, and the shim's own metrics say the same as Stats where it answers.
func TestStats(t *testing.T) {
	env.Need(t)
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	ctx := context.Background()
	if _, err := d.Stats(ctx, "nobody"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Stats of an unknown ID: %v, want ErrNotFound", err)
	}
	for _, tier := range tiers(t) {
		t.Run(string(tier), func(t *testing.T) {
			id := "stats-" + string(tier)
			_, err := d.Start(ctx, runtime.InstanceSpec{ID: id, Workload: "stats", Tier: tier, Image: image,
				Command: []string{"sh", "-c", "while :; do :; done"}, CPUMilli: 500, MemoryBytes: 64 << 20})
			if err != nil {
				t.Fatal(err)
			}
			removed := false
			defer func() {
				if !removed {
					stopRemove(t, d, id)
				}
			}()
			first, err := d.Stats(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var last runtime.Stats
			deadline := time.Now().Add(20 * time.Second)
			for last.CPUSeconds <= first.CPUSeconds && time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
				if last, err = d.Stats(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			if last.CPUSeconds <= first.CPUSeconds || last.MemoryBytes <= 0 {
				t.Errorf("Stats: %+v, then %+v: want CPU rising and memory > 0", first, last)
			}
			if shim, err := containerd.ShimStats(ctx, d, id); err != nil || shim.CPUSeconds == 0 {
				t.Logf("the shim reports no usage for %s (%+v, %v): Stats reads the cgroup files", tier, shim, err)
			}
			stopRemove(t, d, id)
			removed = true
			if _, err := d.Stats(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("Stats after Remove: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestStatsExited reads the usage of an instance whose process has ended.
func TestStatsExited(t *testing.T) {
	env.Need(t)
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	ctx := context.Background()
	const id = "stats-exited"
	if _, err := d.Start(ctx, runtime.InstanceSpec{ID: id, Workload: "stats", Tier: v1alpha1.TierContainer, Image: image,
		Command: []string{"sh", "-c", "sleep 600"}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Remove(ctx, id); err != nil {
			t.Error(err)
		}
	}()
	if _, err := d.Stats(ctx, id); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("Stats of an exited instance: %v, want ErrNotRunning", err)
	}
}
