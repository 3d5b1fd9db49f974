package qemu_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
	"strata.dev/strata/internal/testenv"
)

// TestRestoreAfterKernelChange saves an image VM running on Debian's cloud kernel, then the
// host's guest kernel changes (a daemon restarted on strata's own kernel): the saved VM
// restores and runs on the kernel it was saved under. When that kernel's file is gone, the
// restore says so, naming the file, instead of QEMU's bare error.
func TestRestoreAfterKernelChange(t *testing.T) {
	e := needImageVMs(t)
	cloud, err := guest.FindKernel(guest.DefaultKernelDir)
	if err != nil {
		testenv.Skipf(t, "skipping: the old kernel of this test is Debian's cloud kernel: %v", err)
	}
	// The old kernel directory: links to the cloud kernel, so the test can take it away.
	old := t.TempDir()
	if err := os.MkdirAll(filepath.Join(old, "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	oldImage := filepath.Join(old, "boot", filepath.Base(cloud.Vmlinuz))
	for link, target := range map[string]string{
		oldImage:                  cloud.Vmlinuz,
		filepath.Join(old, "lib"): filepath.Join(guest.DefaultKernelDir, "lib"), // the modules are found under it
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	newDir := guest.StrataKernelDir
	if _, err := guest.FindKernel(newDir); err != nil {
		newDir = guest.DefaultKernelDir // no kernel of strata's own here: the change is the directory
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	driver := func(kernelDir string) *qemu.Driver {
		d, err := qemu.New(t.Context(), qemu.Config{StateDir: state, Images: e.images, GuestInit: guestInit, KernelDir: kernelDir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	d := driver(old)
	spec, saved := countAndSave(t, d, e.image, dir, "kchange")
	last := ticks(t, spec.LogPath)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// The daemon restarts with another guest kernel; the saved VM restores on its own.
	d2 := driver(newDir)
	before := len(last)
	if err := d2.RestoreState(t.Context(), spec.ID, saved); err != nil {
		t.Fatalf("restore after the guest kernel changed: %v", err)
	}
	waitFor(t, "ticks after the restore", time.Minute, func() bool { return len(ticks(t, spec.LogPath)) >= before+3 })
	var out bytes.Buffer
	if code, err := d2.Exec(t.Context(), spec.ID, []string{"cat", "/proc/sys/kernel/osrelease"}, nil, &out, nil); err != nil || code != 0 {
		t.Fatalf("exec cat osrelease: %d %v", code, err)
	}
	if got := strings.TrimSpace(out.String()); got != cloud.Version {
		t.Errorf("the restored guest runs kernel %q, want the one it was saved under, %q", got, cloud.Version)
	}

	// The old kernel is gone: the restore names it and says what to do.
	if err := os.Remove(oldImage); err != nil {
		t.Fatal(err)
	}
	err = d2.RestoreState(t.Context(), spec.ID, saved)
	if err == nil || !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), oldImage) ||
		!strings.Contains(err.Error(), "no longer on this host") {
		t.Errorf("restore without the kernel it was saved under: %v, want an error naming %s", err, oldImage)
	}
}

// TestRestoreAfterKernelRebuilt saves an image VM, then its kernel file is replaced in place
// by another build under the same name (make host-setup rebuilding strata's kernel with a
// changed configuration or patches installs the same release at the same path): the saved VM
// restores, and keeps running the kernel its saved memory holds.
func TestRestoreAfterKernelRebuilt(t *testing.T) {
	e := needImageVMs(t)
	other, err := guest.FindKernel(guest.DefaultKernelDir)
	if err != nil {
		testenv.Skipf(t, "skipping: the other build of this test is Debian's cloud kernel: %v", err)
	}
	if !e.kernel.Builtin {
		testenv.Skipf(t, "skipping: the kernel saved under is strata's own, not %s", e.kernel.Vmlinuz)
	}
	// The kernel directory: a copy of strata's kernel, so the test can overwrite its image.
	kdir := t.TempDir()
	image := filepath.Join(kdir, "boot", filepath.Base(e.kernel.Vmlinuz))
	copyFile(t, e.kernel.Vmlinuz, image)
	copyFile(t, e.kernel.Config, filepath.Join(kdir, "boot", filepath.Base(e.kernel.Config)))
	dir := t.TempDir()
	d, err := qemu.New(t.Context(), qemu.Config{StateDir: filepath.Join(dir, "state"), Images: e.images, GuestInit: guestInit, KernelDir: kdir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	spec, saved := countAndSave(t, d, e.image, dir, "krebuilt")

	copyFile(t, other.Vmlinuz, image)
	before := len(ticks(t, spec.LogPath))
	if err := d.RestoreState(t.Context(), spec.ID, saved); err != nil {
		t.Fatalf("restore after the kernel file was rebuilt: %v", err)
	}
	waitFor(t, "ticks after the restore", time.Minute, func() bool { return len(ticks(t, spec.LogPath)) >= before+3 })
	var out bytes.Buffer
	if code, err := d.Exec(t.Context(), spec.ID, []string{"cat", "/proc/sys/kernel/osrelease"}, nil, &out, nil); err != nil || code != 0 {
		t.Fatalf("exec cat osrelease: %d %v", code, err)
	}
	if got := strings.TrimSpace(out.String()); got != e.kernel.Version {
		t.Errorf("the restored guest runs kernel %q, want the one it was saved under, %q", got, e.kernel.Version)
	}
}

// copyFile writes src's content to dst, making dst's directory.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// countAndSave starts image VM id of image, whose command counts in its log
// five times a second, waits until it has counted to 3, and saves its state
// into dir/saved.
func countAndSave(t *testing.T, d *qemu.Driver, image, dir, id string) (runtime.InstanceSpec, runtime.SavedState) {
	t.Helper()
	spec := runtime.InstanceSpec{
		ID: id, Workload: id, Tier: v1alpha1.TierVM, Image: image, MemoryBytes: 128 << 20,
		Command: []string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"},
		LogPath: filepath.Join(dir, id+".log"),
	}
	removeAll(t, d, spec.ID)
	if _, err := d.Start(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the counter to reach 3", time.Minute, func() bool { n := ticks(t, spec.LogPath); return len(n) > 0 && n[len(n)-1] >= 3 })
	saved, err := d.SaveState(t.Context(), spec.ID, filepath.Join(dir, "saved"))
	if err != nil {
		t.Fatal(err)
	}
	return spec, saved
}
