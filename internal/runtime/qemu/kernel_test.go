package qemu_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/testenv"
)

const kernelMessage = "strata-kernel-boot-ok"

// guestKernel returns strata's guest kernel, skipping t when it has not been
// installed.
func guestKernel(t testing.TB) guest.Kernel {
	t.Helper()
	k, err := guest.LocateKernel(kernelDir())
	if err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
	return k
}

// kernelDir is where the tests look for the guest kernel: $STRATA_GUEST_KERNEL_DIR,
// else "" (what the driver does by default: strata's own kernel where
// `make host-setup` built it, else Debian's cloud kernel).
func kernelDir() string {
	return os.Getenv("STRATA_GUEST_KERNEL_DIR")
}

// modularKernel returns a guest kernel with modules (Debian's cloud kernel),
// for tests whose guest loads modules of its own; it skips t without one.
func modularKernel(t testing.TB) guest.Kernel {
	t.Helper()
	k := guestKernel(t)
	if !k.Builtin {
		return k
	}
	k, err := guest.FindKernel(guest.DefaultKernelDir)
	if err != nil {
		testenv.Skipf(t, "skipping: this test's guest loads modules, and %v", err)
	}
	return k
}

// shellInitrd returns a gzip'd cpio archive with a static busybox, the given
// kernel modules (at /modules/NAME.ko) and an /init script: a guest of the
// user's own, as a VM source would bring.
func shellInitrd(t testing.TB, script string, modules ...string) []byte {
	t.Helper()
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testenv.Skipf(t, "skipping: a static busybox is needed for the test guest (install busybox-static): %v", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	ino := 0
	add := func(name string, mode int, data []byte) {
		ino++
		var entry bytes.Buffer
		fmt.Fprintf(&entry, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\x00",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0, name)
		entry.Write(make([]byte, (4-(110+len(name)+1)%4)%4))
		entry.Write(data)
		entry.Write(make([]byte, (4-len(data)%4)%4))
		if _, err := zw.Write(entry.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	add("bin", 0o40755, nil)
	add("bin/busybox", 0o100755, busybox)
	if len(modules) > 0 {
		add("modules", 0o40755, nil)
	}
	for _, m := range modules {
		data, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		add("modules/"+filepath.Base(m), 0o100644, data)
	}
	add("init", 0o100755, []byte("#!/bin/busybox sh\n"+script))
	add("TRAILER!!!", 0, nil)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestKernelVM boots a kernel and initrd of the user's own on a standard PC:
// the console reaches the log, and a guest that powers off ends the instance
// with exit code 0.
func TestKernelVM(t *testing.T) {
	needQEMU(t)
	k := guestKernel(t)
	dir := t.TempDir()
	initrd := filepath.Join(dir, "initrd.gz")
	script := "/bin/busybox echo " + kernelMessage + "\n/bin/busybox poweroff -f\n"
	if err := os.WriteFile(initrd, shellInitrd(t, script), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newVMDriver(t, filepath.Join(dir, "state"))
	spec := runtime.InstanceSpec{
		ID: "kernel", Workload: "kernel", Tier: v1alpha1.TierVM, MemoryBytes: 256 << 20,
		VM:      &v1alpha1.VMSource{Kernel: k.Vmlinuz, Initrd: initrd, Cmdline: "panic=-1"},
		LogPath: filepath.Join(dir, "kernel.log"),
	}
	removeAll(t, d, spec.ID)
	if _, err := d.Start(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	var st runtime.Status
	waitFor(t, "the guest to power off", 60*time.Second, func() bool {
		var err error
		st, err = d.Status(t.Context(), spec.ID)
		return err == nil && st.State == runtime.StateExited
	})
	if st.ExitCode != 0 {
		t.Errorf("exit code %d (%s), want 0 after a power-off", st.ExitCode, st.Message)
	}
	log, _ := os.ReadFile(spec.LogPath)
	if !strings.Contains(string(log), kernelMessage) {
		t.Errorf("the console log lacks %q:\n%s", kernelMessage, log)
	}
	if !strings.Contains(string(log), "Linux version") {
		t.Errorf("the console log lacks the kernel's banner (console=ttyS0 was to be added)")
	}
}

// TestKernelDiskCloudInit boots a kernel with a root disk and a cloud-init
// seed: the guest sees the disk through a copy-on-write overlay and reads the
// seed's user-data and meta-data from a disk labelled cidata.
func TestKernelDiskCloudInit(t *testing.T) {
	needQEMU(t)
	if _, err := exec.LookPath("genisoimage"); err != nil {
		testenv.Skipf(t, "skipping: genisoimage not found (make host-setup installs it)")
	}
	k := modularKernel(t) // the guest loads isofs, which strata's own kernel leaves out
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "marker"), []byte("from-the-disk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "root.ext4")
	if err := guest.MakeRootDisk(t.Context(), root, disk, 16<<20); err != nil {
		t.Fatal(err)
	}
	var mods []string
	for _, m := range []string{"virtio/virtio_ring", "virtio/virtio", "virtio/virtio_pci_legacy_dev", "virtio/virtio_pci_modern_dev", "virtio/virtio_pci", "block/virtio_blk"} {
		mods = append(mods, filepath.Join(k.ModulesDir, "kernel", "drivers", m+".ko"))
	}
	mods = append(mods, filepath.Join(k.ModulesDir, "kernel", "drivers", "cdrom", "cdrom.ko"), filepath.Join(k.ModulesDir, "kernel", "fs", "isofs", "isofs.ko"))
	script := `bb=/bin/busybox
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk cdrom isofs; do $bb insmod /modules/$m.ko; done
$bb mkdir -p /dev /disk /seed; $bb mount -t devtmpfs dev /dev
$bb mount -t ext4 /dev/vda /disk && $bb cat /disk/marker
echo changed > /disk/marker; $bb sync
$bb mount -t iso9660 -o ro /dev/vdb /seed && $bb cat /seed/user-data /seed/meta-data
$bb poweroff -f
`
	initrd := filepath.Join(dir, "initrd.gz")
	if err := os.WriteFile(initrd, shellInitrd(t, script, mods...), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(disk)
	d := newVMDriver(t, filepath.Join(dir, "state"))
	spec := runtime.InstanceSpec{
		ID: "cloud", Workload: "cloud", Tier: v1alpha1.TierVM, MemoryBytes: 256 << 20,
		VM: &v1alpha1.VMSource{Kernel: k.Vmlinuz, Initrd: initrd, Cmdline: "console=ttyS0 quiet panic=-1",
			Disk:      &v1alpha1.Disk{Path: disk, Format: v1alpha1.DiskRaw},
			CloudInit: &v1alpha1.CloudInit{UserData: "#cloud-config\nhostname: strata-test\n"}},
		LogPath: filepath.Join(dir, "cloud.log"),
	}
	removeAll(t, d, spec.ID)
	if _, err := d.Start(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the guest to power off", 60*time.Second, func() bool {
		st, err := d.Status(t.Context(), spec.ID)
		return err == nil && st.State == runtime.StateExited
	})
	log, _ := os.ReadFile(spec.LogPath)
	for _, want := range []string{"from-the-disk", "hostname: strata-test", "instance-id: cloud"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the console lacks %q:\n%s", want, log)
		}
	}
	if after, _ := os.ReadFile(disk); !bytes.Equal(before, after) {
		t.Error("the guest's write reached the user's disk")
	}
}
