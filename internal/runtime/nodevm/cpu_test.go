package nodevm_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
)

// TestCPULimit: a replica's CPU request is its container's CFS quota in the
// guest (cgroup v2's cpu.max) once it runs. The guest sets it after the
// start, so that the runtime's setup of the container, which runs in the
// container's cgroup, is not throttled by a small one (25m made a runc start
// take 30 s under emulation); the test logs how long Start took.
func TestCPULimit(t *testing.T) {
	s := needNodeVMs(t)
	s.removeNodeVMs(t)
	d := s.driver(t)
	dir := t.TempDir()
	// The first start boots the node VM and plugs the image in.
	s.startAndRemove(t, d, "boot")
	spec := runtime.InstanceSpec{
		ID: "cpu", Workload: "cpu", Tier: v1alpha1.TierContainer, Image: s.image, Command: script.Serve(600),
		LogPath: filepath.Join(dir, "cpu.log"), CPUMilli: 25, MemoryBytes: 64 << 20,
	}
	begin := time.Now()
	if _, err := d.Start(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	started := time.Since(begin)
	defer func() {
		_ = d.Stop(t.Context(), spec.ID, 0)
		_ = d.Remove(t.Context(), spec.ID)
	}()
	waitServing(t, spec.LogPath)
	t.Logf("a 25m replica: Start took %v, serving after %v", started.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
	// The container sees the guest's cgroup tree (read-only).
	var out bytes.Buffer
	code, err := d.Exec(t.Context(), spec.ID, []string{"cat", "/sys/fs/cgroup/strata/cpu/ctr/cpu.max"}, nil, &out, &out)
	if err != nil || code != 0 {
		t.Fatalf("read the container's cpu.max: code %d, %v: %s", code, err, out.String())
	}
	if got := strings.TrimSpace(out.String()); got != "2500 100000" {
		t.Errorf("the container's cpu.max in the guest: %q; want \"2500 100000\" (25m of each 100 ms)", got)
	}
	begin = time.Now()
	if err := d.Stop(t.Context(), spec.ID, 0); err != nil {
		t.Error(err)
	}
	if err := d.Remove(t.Context(), spec.ID); err != nil {
		t.Error(err)
	}
	t.Logf("Stop and Remove took %v", time.Since(begin).Round(time.Millisecond))
}
