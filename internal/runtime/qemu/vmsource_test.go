package qemu_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
	"strata.dev/strata/internal/testenv"
)

// bootMessage is what the test boot sector prints on the serial port.
const bootMessage = "strata-disk-boot-ok"

// bootSector returns a 1 MiB raw disk whose master boot record prints
// bootMessage on COM1 and halts: a VM disk that needs nothing but the BIOS.
func bootSector() []byte {
	code := []byte{
		0xFA,       // cli
		0x31, 0xC0, // xor ax, ax
		0x8E, 0xD8, // mov ds, ax
		0xBE, 0x16, 0x7C, // mov si, 0x7c16 (the message, below)
		0xBA, 0xF8, 0x03, // mov dx, 0x3f8 (COM1)
		0xAC,       // loop: lodsb
		0x84, 0xC0, // test al, al
		0x74, 0x03, // jz done
		0xEE,       // out dx, al
		0xEB, 0xF8, // jmp loop
		0xF4,       // done: hlt
		0xEB, 0xFD, // jmp done
	}
	disk := make([]byte, 1<<20)
	copy(disk, code)
	copy(disk[len(code):], bootMessage+"\r\n\x00")
	disk[510], disk[511] = 0x55, 0xAA
	return disk
}

// needQEMU skips t when QEMU is not installed.
func needQEMU(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.Skipf(t, "skipping: %s not found (install qemu-system-x86 and qemu-utils: `make host-setup`)", bin)
		}
	}
}

// newVMDriver returns a driver for VM sources over a fresh state directory.
func newVMDriver(t *testing.T, dir string) *qemu.Driver {
	t.Helper()
	d, err := qemu.New(t.Context(), qemu.Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func removeAll(t testing.TB, d runtime.Driver, id string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = d.Stop(ctx, id, 0)
		_ = d.Remove(ctx, id)
	})
}

// TestDiskVM boots a raw disk and its qcow2 copy through the BIOS: the boot
// sector's output reaches the log, the user's disk is never written, and
// stop and remove leave nothing behind.
func TestDiskVM(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "legacy.img")
	if err := os.WriteFile(raw, bootSector(), 0o600); err != nil {
		t.Fatal(err)
	}
	qcow := filepath.Join(dir, "legacy.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	d := newVMDriver(t, filepath.Join(dir, "state"))
	for _, tt := range []struct {
		name, path string
		format     v1alpha1.DiskFormat
	}{{"raw", raw, v1alpha1.DiskRaw}, {"qcow2", qcow, v1alpha1.DiskQCOW2}} {
		t.Run(tt.name, func(t *testing.T) {
			before, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			id := "disk-" + tt.name
			spec := runtime.InstanceSpec{
				ID: id, Workload: "legacy", Tier: v1alpha1.TierVM, MemoryBytes: 64 << 20,
				VM:      &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: tt.path, Format: tt.format}},
				LogPath: filepath.Join(dir, id+".log"),
			}
			removeAll(t, d, id)
			st, err := d.Start(t.Context(), spec)
			if err != nil {
				t.Fatal(err)
			}
			if st.State != runtime.StateRunning || st.PID == 0 || !strings.Contains(st.Message, "running under") {
				t.Fatalf("started: %+v", st)
			}
			waitFor(t, "the boot sector's message in the log", 30*time.Second, func() bool {
				b, _ := os.ReadFile(spec.LogPath)
				return bytes.Contains(b, []byte(bootMessage))
			})
			// The guest halts with interrupts off: it ignores the power button.
			if err := d.Stop(t.Context(), id, 500*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			st, err = d.Status(t.Context(), id)
			if err != nil || st.State != runtime.StateExited || st.ExitCode != 137 {
				t.Fatalf("after stop: %+v, %v; want exited with 137", st, err)
			}
			if err := d.Remove(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "state", id)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the instance's directory is still there after remove: %v", err)
			}
			if _, err := os.Stat("/proc/" + strconv.Itoa(st.PID)); err == nil && st.PID != 0 {
				t.Errorf("QEMU pid %d still exists", st.PID)
			}
			after, err := os.ReadFile(tt.path)
			if err != nil || !bytes.Equal(before, after) {
				t.Errorf("the user's disk changed (%v)", err)
			}
		})
	}
}

// TestBadVMSources checks that a missing kernel or disk, a corrupt qcow2, a
// disk of the wrong format and more memory than the host has are refused with
// a clear error and leave nothing behind.
func TestBadVMSources(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.qcow2")
	// A qcow2 header that promises a huge L1 table at an offset past the end.
	hdr := make([]byte, 512)
	copy(hdr, "QFI\xfb\x00\x00\x00\x03")
	hdr[24+7] = 0x10 // size
	hdr[36+3] = 0xff // l1_size
	hdr[40] = 0x7f   // l1_table_offset, far past the end
	if err := os.WriteFile(corrupt, hdr, 0o600); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(dir, "plain.img")
	if err := os.WriteFile(raw, bootSector(), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	d := newVMDriver(t, state)
	tests := []struct {
		name string
		vm   *v1alpha1.VMSource
		mem  int64
		want string
	}{
		{"missing kernel", &v1alpha1.VMSource{Kernel: filepath.Join(dir, "no-vmlinuz")}, 0, "vm.kernel"},
		{"missing initrd", &v1alpha1.VMSource{Kernel: raw, Initrd: filepath.Join(dir, "no-initrd")}, 0, "vm.initrd"},
		{"relative kernel", &v1alpha1.VMSource{Kernel: "vmlinuz"}, 0, "not an absolute path"},
		{"missing disk", &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: filepath.Join(dir, "none.qcow2"), Format: "qcow2"}}, 0, "vm.disk"},
		{"corrupt qcow2", &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: corrupt, Format: "qcow2"}}, 0, "corrupt.qcow2"},
		{"raw said to be qcow2", &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: raw, Format: "qcow2"}}, 0, "not a usable qcow2 image"},
		{"more memory than the host", &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: raw, Format: "raw"}}, 1 << 50, "more than this host has"},
		{"too little memory", &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: raw, Format: "raw"}}, 1 << 20, "too small"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "bad-" + strconv.Itoa(i)
			_, err := d.Start(t.Context(), runtime.InstanceSpec{ID: id, Workload: "bad", Tier: v1alpha1.TierVM, VM: tt.vm, MemoryBytes: tt.mem})
			if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("start: %v; want ErrInvalid naming %q", err, tt.want)
			}
			t.Log(err)
			if _, err := os.Stat(filepath.Join(state, id)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed start left its directory: %v", err)
			}
			if _, err := d.Status(t.Context(), id); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("status after a failed start: %v, want ErrNotFound", err)
			}
		})
	}
}

// qemuIO runs qemu-io commands on an image that no QEMU has open.
func qemuIO(t *testing.T, image string, cmds ...string) string {
	t.Helper()
	args := []string{"-f", "qcow2"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("qemu-io", append(args, image)...).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("Pattern verification failed")) {
		t.Fatalf("qemu-io %v %s: %v\n%s", cmds, image, err, out)
	}
	return string(out)
}

// TestSlotDisk: with a DiskDir, a disk VM writes to the slot's own overlay there,
// which outlives Remove and is used again by the next Start; SnapshotDisk copies it
// while the VM runs and RestoreSlotDisk puts such a copy back; a changed vm.disk sets
// the old slot disk aside instead of dropping it.
func TestSlotDisk(t *testing.T) {
	needQEMU(t)
	if _, err := exec.LookPath("qemu-io"); err != nil {
		testenv.Skipf(t, "skipping: qemu-io not found (qemu-utils: `make host-setup`)")
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "legacy.img")
	if err := os.WriteFile(raw, bootSector(), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newVMDriver(t, filepath.Join(dir, "state"))
	slot := filepath.Join(dir, "disks", "legacy", "0")
	spec := runtime.InstanceSpec{
		ID: "legacy-0", Workload: "legacy", Tier: v1alpha1.TierVM, MemoryBytes: 64 << 20, DiskDir: slot,
		VM:      &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: raw, Format: v1alpha1.DiskRaw}},
		LogPath: filepath.Join(dir, "legacy.log"),
	}
	removeAll(t, d, spec.ID)
	cycle := func() {
		t.Helper()
		if _, err := d.Start(t.Context(), spec); err != nil {
			t.Fatal(err)
		}
		if err := d.Stop(t.Context(), spec.ID, 0); err != nil {
			t.Fatal(err)
		}
		if err := d.Remove(t.Context(), spec.ID); err != nil {
			t.Fatal(err)
		}
	}
	cycle()
	disk := filepath.Join(slot, qemu.SlotDiskFile)
	// What the guest would have written: a pattern at 512 KiB.
	qemuIO(t, disk, "write -P 0xab 512k 64k")
	cycle()
	qemuIO(t, disk, "read -P 0xab 512k 64k") // still there after a new instance ran

	// A snapshot of the running VM holds the slot's data, standalone.
	if _, err := d.Start(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "snap.qcow2")
	if err := d.SnapshotDisk(t.Context(), spec.ID, snap); err != nil {
		t.Fatal(err)
	}
	info, err := exec.Command("qemu-img", "info", "--output=json", snap).Output()
	if err != nil || bytes.Contains(info, []byte("backing-filename")) {
		t.Errorf("snapshot %s: %v, %s; want a standalone qcow2", snap, err, info)
	}
	qemuIO(t, snap, "read -P 0xab 512k 64k", "read -P 0x55 510 1") // the slot's data and the boot sector's signature
	if err := d.Stop(t.Context(), spec.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(t.Context(), spec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(disk); err != nil {
		t.Fatalf("the slot disk is gone after Remove: %v", err)
	}

	// Overwrite the data, restore the snapshot into the slot: the next instance uses it.
	qemuIO(t, disk, "write -P 0xcd 512k 64k")
	if err := d.RestoreSlotDisk(t.Context(), slot, raw, snap); err != nil {
		t.Fatal(err)
	}
	cycle()
	qemuIO(t, disk, "read -P 0xab 512k 64k")
	if aside, _ := filepath.Glob(filepath.Join(slot, "disk-*.qcow2")); len(aside) != 0 {
		t.Errorf("a restored slot disk was set aside at the next start: %v", aside)
	}
	qemuIO(t, snap, "read -P 0xab 512k 64k") // the snapshot itself is untouched

	// Another vm.disk: the old slot disk is kept aside, a fresh one made.
	other := filepath.Join(dir, "other.img")
	if err := os.WriteFile(other, bootSector(), 0o600); err != nil {
		t.Fatal(err)
	}
	spec.VM = &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: other, Format: v1alpha1.DiskRaw}}
	cycle()
	aside, _ := filepath.Glob(filepath.Join(slot, "disk-*.qcow2"))
	if len(aside) != 1 {
		t.Fatalf("slot files after vm.disk changed: %v, want one old disk kept aside", aside)
	}
	qemuIO(t, aside[0], "read -P 0xab 512k 64k")
	qemuIO(t, disk, "read -P 0 512k 64k")
}
