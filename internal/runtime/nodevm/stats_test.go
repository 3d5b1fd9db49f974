package nodevm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// TestStats: a container (runc) and a sandbox (runsc) that burn CPU in one
// node VM show growing CPU time and memory held; an instance that has
// ended is ErrNotRunning, an unknown one ErrNotFound.
func TestStats(t *testing.T) {
	s := needNodeVMs(t)
	s.removeNodeVMs(t)
	d := s.driver(t)
	tiers := []v1alpha1.Tier{v1alpha1.TierContainer}
	if s.tools.Runsc != "" {
		tiers = append(tiers, v1alpha1.TierSandbox)
	} else {
		t.Log("no sandbox: no runsc at /opt/strata/bin/runsc; make host-setup builds it")
	}
	burn := []string{"sh", "-c", "while :; do :; done"}
	for _, tier := range tiers {
		id := "burn-" + string(tier)
		t.Cleanup(func() {
			_ = d.Stop(context.Background(), id, 0)
			_ = d.Remove(context.Background(), id)
		})
		if _, err := d.Start(t.Context(), runtime.InstanceSpec{ID: id, Workload: id, Tier: tier, Image: s.image, Command: burn}); err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
	}
	for _, tier := range tiers {
		id := "burn-" + string(tier)
		first, err := d.Stats(t.Context(), id)
		if err != nil {
			t.Fatalf("stats of %s: %v", id, err)
		}
		if first.MemoryBytes <= 0 {
			t.Errorf("%s holds %d bytes of memory, want more than none", id, first.MemoryBytes)
		}
		// Under TCG on a busy host the loop gets little of the node VM's
		// CPU; give it time to use a measurable share.
		var later runtime.Stats
		began := time.Now()
		deadline := began.Add(time.Minute)
		for time.Now().Before(deadline) {
			time.Sleep(2 * time.Second)
			if later, err = d.Stats(t.Context(), id); err != nil {
				t.Fatalf("stats of %s: %v", id, err)
			}
			if later.CPUSeconds >= first.CPUSeconds+0.5 {
				break
			}
		}
		t.Logf("%s: %.2f then %.2f CPU-seconds %v later, %d then %d bytes", id, first.CPUSeconds, later.CPUSeconds,
			time.Since(began).Round(time.Millisecond), first.MemoryBytes, later.MemoryBytes)
		if later.CPUSeconds < first.CPUSeconds+0.5 {
			t.Errorf("%s burns CPU, but its CPU time went from %.2f s to %.2f s in a minute", id, first.CPUSeconds, later.CPUSeconds)
		}
		if err := d.Stop(t.Context(), id, 0); err != nil {
			t.Fatalf("stop %s: %v", id, err)
		}
		if _, err := d.Stats(t.Context(), id); !errors.Is(err, runtime.ErrNotRunning) {
			t.Errorf("stats of %s after its stop: %v, want ErrNotRunning", id, err)
		}
	}
	if _, err := d.Stats(t.Context(), "nobody"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("stats of an unknown instance: %v, want ErrNotFound", err)
	}
}
