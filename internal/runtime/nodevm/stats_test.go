package nodevm_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/nodevm"
)

// TestUsageAndRootfs reads what instances in one node VM use and what a
// container changed in its root filesystem: one node VM boot for both.
func TestUsageAndRootfs(t *testing.T) {
	s := needNodeVMs(t)
	s.removeNodeVMs(t)
	d := s.driver(t)
	t.Run("Stats", func(t *testing.T) { testStats(t, s, d) })
	t.Run("SaveRootfs", func(t *testing.T) { testSaveRootfs(t, s, d, v1alpha1.TierContainer) })
	t.Run("SaveRootfsSandbox", func(t *testing.T) {
		needRunsc(t, s)
		testSaveRootfs(t, s, d, v1alpha1.TierSandbox)
	})
}

// testStats: a container (crun) and a sandbox (runsc) that burn CPU in one
// node VM show growing CPU time and memory held; an instance that has
// ended is ErrNotRunning, an unknown one ErrNotFound.
func testStats(t *testing.T, s setup, d *nodevm.Driver) {
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

// testSaveRootfs: the layer of a paused instance of tier (a container,
// or a sandbox, whose changes runsc writes) holds the file it wrote and a
// whiteout for the image's file it removed, and nothing of what it left
// alone, and a new instance started from it has the file and not the
// removed one; an ended instance's is ErrNotRunning.
func testSaveRootfs(t *testing.T, s setup, d *nodevm.Driver, tier v1alpha1.Tier) {
	serve := func(id string) runtime.InstanceSpec {
		spec := s.serve(string(tier) + "-" + id)
		spec.Tier = tier
		return spec
	}
	spec := serve("layer")
	t.Cleanup(func() {
		_ = d.Stop(context.Background(), spec.ID, 0)
		_ = d.Remove(context.Background(), spec.ID)
	})
	if _, err := d.Start(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if code, err := d.Exec(t.Context(), spec.ID, []string{"sh", "-c", "echo kept > /etc/state && busybox rm /bin/false"}, nil, &out, &out); err != nil || code != 0 {
		t.Fatalf("change the root filesystem: %d, %v: %s", code, err, out.String())
	}
	if err := d.Pause(t.Context(), spec.ID); err != nil {
		t.Fatalf("pause: %v", err)
	}
	var layer bytes.Buffer
	err := d.SaveRootfs(t.Context(), spec.ID, &layer)
	if rerr := d.Resume(t.Context(), spec.ID); rerr != nil {
		t.Errorf("resume: %v", rerr)
	}
	if err != nil {
		t.Fatalf("SaveRootfs: %v", err)
	}
	raw := bytes.Clone(layer.Bytes())
	files := map[string]string{}
	tr := tar.NewReader(&layer)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the layer is no tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
	}
	t.Logf("layer entries: %q", keys(files))
	if files["etc/state"] != "kept\n" {
		t.Errorf("layer: etc/state %q, want \"kept\\n\" (entries %v)", files["etc/state"], keys(files))
	}
	if _, ok := files["bin/.wh.false"]; !ok {
		t.Errorf("layer has no whiteout bin/.wh.false for the removed /bin/false (entries %v)", keys(files))
	}
	if _, ok := files["bin/busybox"]; ok {
		t.Error("layer holds bin/busybox, which the container did not change")
	}
	// The container runs on after its copy.
	if st, err := d.Status(t.Context(), spec.ID); err != nil || st.State != runtime.StateRunning {
		t.Errorf("after the copy: %+v, %v; want running", st, err)
	}
	// A new instance starts from the layer: the file is there, the removed one is not.
	saved := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(saved, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	// Its ID begins with the first one's (runsc refused that as ambiguous
	// before the guest marked the IDs it gives runsc: guest.RunscID).
	back := serve("layer-back")
	back.RootfsLayer = saved
	t.Cleanup(func() {
		_ = d.Stop(context.Background(), back.ID, 0)
		_ = d.Remove(context.Background(), back.ID)
	})
	if _, err := d.Start(t.Context(), back); err != nil {
		t.Fatalf("start from the layer: %v", err)
	}
	out.Reset()
	if code, err := d.Exec(t.Context(), back.ID, []string{"sh", "-c", "cat /etc/state; [ -e /bin/false ] && echo false-is-back; true"}, nil, &out, &out); err != nil || code != 0 || out.String() != "kept\n" {
		t.Errorf("started from the layer: %d, %v, output %q; want /etc/state holding \"kept\" and no /bin/false", code, err, out.String())
	}
	// A paused container that is stopped acts on its SIGTERM (the guest lets it run
	// again after the signal) rather than be killed after the grace.
	if err := d.Pause(t.Context(), spec.ID); err != nil {
		t.Fatalf("pause: %v", err)
	}
	if err := d.Stop(t.Context(), spec.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	if st, err := d.Status(t.Context(), spec.ID); err != nil || st.ExitCode != 143 {
		t.Errorf("a paused container stopped: %+v, %v; want exit code 143, its own end on SIGTERM", st, err)
	}
	if err := d.SaveRootfs(t.Context(), spec.ID, io.Discard); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("SaveRootfs of an ended instance: %v, want ErrNotRunning", err)
	}
	if err := d.SaveRootfs(t.Context(), "nobody", io.Discard); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("SaveRootfs of an unknown instance: %v, want ErrNotFound", err)
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
