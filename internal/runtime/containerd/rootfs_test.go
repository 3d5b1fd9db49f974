package containerd_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/containerd"
	"strata.dev/strata/internal/runtime/containerd/ctrdtest"
)

// TestRootfsRoundTrip changes an instance's root filesystem (a new file in a new
// directory, a changed one, a removed one), copies the changes while it is frozen, and
// starts a second instance from the copy: it sees exactly those changes.
func TestRootfsRoundTrip(t *testing.T) {
	env.Need(t)
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	for _, tier := range tiers(t) {
		t.Run(string(tier), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			spec := runtime.InstanceSpec{
				ID: "rootfs-a-" + string(tier), Workload: "rootfs", Tier: tier, Image: image,
				Command: []string{"sh", "-c", "mkdir -p /srv/app && echo hello > /srv/app/data.txt && echo changed > /etc/motd && " +
					"busybox rm /bin/wget && echo ready && exec sleep 600"},
				LogPath: filepath.Join(dir, "a.log"),
			}
			if _, err := d.Start(ctx, spec); err != nil {
				t.Fatal(err)
			}
			defer stopRemove(t, d, spec.ID)
			waitFor(t, spec.LogPath, "ready\n")

			if err := d.Pause(ctx, spec.ID); err != nil {
				t.Fatal(err)
			}
			layer := filepath.Join(dir, "layer.tar")
			f, err := os.Create(layer)
			if err != nil {
				t.Fatal(err)
			}
			begin := time.Now()
			err = d.SaveRootfs(ctx, spec.ID, f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if rerr := d.Resume(ctx, spec.ID); rerr != nil {
				t.Errorf("resume: %v", rerr)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: root filesystem copied in %v", tier, time.Since(begin).Round(time.Millisecond))

			entries := readLayer(t, layer)
			for name, want := range map[string]string{"srv/app/data.txt": "hello\n", "etc/motd": "changed\n", "bin/.wh.wget": ""} {
				got, ok := entries[name]
				if !ok {
					t.Errorf("layer has no %s; it has %v", name, keys(entries))
				} else if got != want {
					t.Errorf("layer %s = %q, want %q", name, got, want)
				}
			}
			if _, ok := entries["bin/busybox"]; ok {
				t.Errorf("layer holds bin/busybox, which the instance did not change")
			}

			b := runtime.InstanceSpec{
				ID: "rootfs-b-" + string(tier), Workload: "rootfs", Slot: 1, Tier: tier, Image: image, RootfsLayer: layer,
				Command: []string{"sh", "-c", "cat /srv/app/data.txt /etc/motd; test -e /bin/wget && echo wget-present || echo wget-gone; exec sleep 600"},
				LogPath: filepath.Join(dir, "b.log"),
			}
			if _, err := d.Start(ctx, b); err != nil {
				t.Fatal(err)
			}
			defer stopRemove(t, d, b.ID)
			waitFor(t, b.LogPath, "hello\nchanged\nwget-gone\n")
		})
	}
}

// BenchmarkSaveRootfs copies the root filesystem of an instance that wrote 16 MiB of
// random data outside its volumes; the rate is of the layer written.
func BenchmarkSaveRootfs(b *testing.B) {
	env.Need(b)
	d := env.NewDriver(b)
	ctrdtest.ImportImage(b, d, image)
	for _, tier := range tiers(b) {
		b.Run(string(tier), func(b *testing.B) {
			ctx := context.Background()
			spec := runtime.InstanceSpec{
				ID: "rootfs-bench-" + string(tier), Workload: "rootfs", Tier: tier, Image: image,
				Command: []string{"sh", "-c", "mkdir -p /srv && dd if=/dev/urandom of=/srv/blob bs=1M count=16 2>/dev/null && echo ready && exec sleep 600"},
				LogPath: filepath.Join(b.TempDir(), "bench.log"),
			}
			if _, err := d.Start(ctx, spec); err != nil {
				b.Fatal(err)
			}
			defer stopRemove(b, d, spec.ID)
			waitFor(b, spec.LogPath, "ready\n")
			var n countingWriter
			if err := d.SaveRootfs(ctx, spec.ID, &n); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(n))
			for b.Loop() {
				if err := d.SaveRootfs(ctx, spec.ID, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// TestRootfsLayerMissing checks that a start from a layer that is not there fails and
// leaves nothing behind.
func TestRootfsLayerMissing(t *testing.T) {
	env.Need(t)
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	spec := runtime.InstanceSpec{ID: "rootfs-missing", Workload: "rootfs", Tier: v1alpha1.TierContainer, Image: image,
		Command: []string{"true"}, RootfsLayer: filepath.Join(t.TempDir(), "absent.tar")}
	_, err := d.Start(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "absent.tar") {
		t.Fatalf("start from a missing layer: %v, want an error naming the file", err)
	}
	if left := leftovers(t, spec.ID); len(left) > 0 {
		t.Errorf("a failed start left %v", left)
	}
	if _, err := d.Status(context.Background(), spec.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("status after a failed start: %v, want ErrNotFound", err)
	}
}

// TestSaveRootfsNotFound checks the error for an unknown instance.
func TestSaveRootfsNotFound(t *testing.T) {
	env.Need(t)
	d := env.NewDriver(t)
	if err := d.SaveRootfs(context.Background(), "no-such-instance", io.Discard); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("SaveRootfs of an unknown instance: %v, want ErrNotFound", err)
	}
}

// readLayer returns a layer's regular files and whiteouts by name, with their content.
func readLayer(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("layer %s: %v", path, err)
		}
		var b bytes.Buffer
		if _, err := io.Copy(&b, tr); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			out[strings.TrimPrefix(h.Name, "./")] = b.String()
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// waitFor waits until the log at path holds want.
func waitFor(t testing.TB, path, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s: %q, want it to hold %q", path, b, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var _ runtime.RootfsSaver = (*containerd.Driver)(nil)
