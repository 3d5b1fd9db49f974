package containerd_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// TestRootfsLayerStaysInside starts instances from layers built to write on the host
// (a symbolic link to a host directory and then a setuid file through it; a hard link
// to a host file): each start is refused, leaves nothing behind, and the host
// directory is as it was. A harmless layer with a device node starts without it.
func TestRootfsLayerStaysInside(t *testing.T) {
	env.Need(t)
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "passwd"), []byte("root:x:0:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name string
		hdrs []*tar.Header
	}{
		{"symlink then a setuid file through it", []*tar.Header{
			{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: host},
			{Name: "esc/x", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 1},
		}},
		{"hard link to a host file", []*tar.Header{
			{Name: "pw", Typeflag: tar.TypeLink, Linkname: filepath.Join(host, "passwd")},
		}},
		{"dot-dot name", []*tar.Header{
			{Name: "../../../../../../../../" + filepath.Join(host, "x"), Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layer := writeLayer(t, tc.hdrs)
			spec := runtime.InstanceSpec{ID: fmt.Sprintf("rootfs-evil-%d", i), Workload: "rootfs", Tier: v1alpha1.TierContainer,
				Image: image, Command: []string{"true"}, RootfsLayer: layer}
			if _, err := d.Start(context.Background(), spec); err == nil {
				stopRemove(t, d, spec.ID)
				t.Errorf("started; want the layer refused")
			} else {
				t.Logf("refused: %v", err)
			}
			entries, _ := os.ReadDir(host)
			fi, _ := os.Stat(filepath.Join(host, "passwd"))
			if n := fi.Sys().(*syscall.Stat_t).Nlink; len(entries) != 1 || n != 1 {
				t.Errorf("the host directory changed: %d entries, passwd has %d links", len(entries), n)
			}
			if left := leftovers(t, spec.ID); len(left) > 0 {
				t.Errorf("a refused start left %v", left)
			}
		})
	}

	layer := writeLayer(t, []*tar.Header{
		{Name: "srv/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "srv/tool", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 1},
		{Name: "srv/kmem", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 2},
	})
	dir := t.TempDir()
	spec := runtime.InstanceSpec{ID: "rootfs-devices", Workload: "rootfs", Tier: v1alpha1.TierContainer, Image: image, RootfsLayer: layer,
		Command: []string{"sh", "-c", "ls -l /srv; test -e /srv/kmem && echo kmem-present || echo kmem-absent; test -u /srv/tool && echo setuid; exec sleep 600"},
		LogPath: filepath.Join(dir, "log")}
	if _, err := d.Start(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	defer stopRemove(t, d, spec.ID)
	waitFor(t, spec.LogPath, "kmem-absent\nsetuid\n")
}

// writeLayer writes a layer archive of hdrs (regular files hold Size bytes) and
// returns its path.
func writeLayer(t *testing.T, hdrs []*tar.Header) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSaveRootfsPlan: a container's layer written from its upper directory for a
// backup holds the files, whiteouts and content the diff service's layer holds; every
// large file is in its plan, and the content of one the index knows is left out. A
// sandbox's layer cannot be written so (ErrUnsupported).
func TestSaveRootfsPlan(t *testing.T) {
	env.Need(t)
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	for _, tier := range tiers(t) {
		t.Run(string(tier), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			spec := runtime.InstanceSpec{
				ID: "rootfs-plan-" + string(tier), Workload: "rootfs", Tier: tier, Image: image,
				Command: []string{"sh", "-c", "mkdir -p /srv && dd if=/dev/urandom of=/srv/blob bs=1024 count=1024 2>/dev/null && " +
					"echo changed > /etc/motd && busybox rm /bin/wget && echo ready && exec sleep 600"},
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
			defer func() { _ = d.Resume(ctx, spec.ID) }()
			save := func(name string, unchanged runtime.Unchanged) (string, []runtime.TarFile, error) {
				p := filepath.Join(dir, name)
				f, err := os.Create(p)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				var plan []runtime.TarFile
				if unchanged == nil {
					err = d.SaveRootfs(ctx, spec.ID, f)
				} else {
					plan, err = d.SaveRootfsPlan(ctx, spec.ID, f, unchanged)
				}
				return p, plan, err
			}
			whole, _, err := save("whole.tar", nil)
			if err != nil {
				t.Fatal(err)
			}
			read, plan, err := save("read.tar", func(string, runtime.FileState) bool { return false })
			if tier == v1alpha1.TierSandbox {
				if !errors.Is(err, runtime.ErrUnsupported) {
					t.Fatalf("plan of a sandbox's layer: %v, want ErrUnsupported", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, got := readLayer(t, whole), readLayer(t, read)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("layer from the upper directory has %q; the diff service's %q", keys(got), keys(want))
			}
			if len(plan) != 1 || plan[0].Path != "srv/blob" || plan[0].Size != 1<<20 || plan[0].Skipped || plan[0].Unstable {
				t.Fatalf("plan %+v; want srv/blob, read", plan)
			}
			skipped, plan2, err := save("skipped.tar", func(p string, st runtime.FileState) bool { return st == plan[0].State })
			if err != nil {
				t.Fatal(err)
			}
			a, _ := os.Stat(read)
			b, _ := os.Stat(skipped)
			if len(plan2) != 1 || !plan2[0].Skipped || plan2[0].Offset != plan[0].Offset || b.Size() != a.Size()-1<<20 {
				t.Errorf("with srv/blob known: plan %+v, %d bytes; want it left out of the %d bytes", plan2, b.Size(), a.Size())
			}
		})
	}
}

// BenchmarkSaveRootfsPlan writes the layer of a container that wrote 64 MiB of random
// data into its root filesystem (four 16 MiB files) three ways: `diff` by containerd's
// diff service (SaveRootfs), `upper-read` from the upper directory with nothing known
// (a first backup), `upper-known` with every file known to the index (a backup after no
// change). The rate is of the whole layer.
func BenchmarkSaveRootfsPlan(b *testing.B) {
	env.Need(b)
	d := env.NewDriver(b)
	ctrdtest.ImportImage(b, d, image)
	ctx := context.Background()
	spec := runtime.InstanceSpec{
		ID: "rootfs-plan-bench", Workload: "rootfs", Tier: v1alpha1.TierContainer, Image: image,
		Command: []string{"sh", "-c", "mkdir -p /srv && for i in 1 2 3 4; do dd if=/dev/urandom of=/srv/blob$i bs=1M count=16 2>/dev/null; done && echo ready && exec sleep 600"},
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
	for _, tc := range []struct {
		name      string
		unchanged runtime.Unchanged
	}{
		{"diff", nil},
		{"upper-read", func(string, runtime.FileState) bool { return false }},
		{"upper-known", func(string, runtime.FileState) bool { return true }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				var err error
				if tc.unchanged == nil {
					err = d.SaveRootfs(ctx, spec.ID, io.Discard)
				} else {
					_, err = d.SaveRootfsPlan(ctx, spec.ID, io.Discard, tc.unchanged)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
