package qemu_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
)

// TestDiskCheckpoints writes known blocks into a running VM's disk through
// QEMU's block layer, as a guest does: a copy since a checkpoint holds exactly
// those blocks (zeroed ones too), and applied onto the previous copy gives the
// disk as a whole copy sees it; a missing checkpoint, and one whose QEMU was
// killed, give a whole copy that says why.
func TestDiskCheckpoints(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "data.img")
	if err := os.WriteFile(raw, bootSector(), 0o600); err != nil {
		t.Fatal(err)
	}
	const size = 32 << 20
	if err := os.Truncate(raw, size); err != nil {
		t.Fatal(err)
	}
	d := newVMDriver(t, filepath.Join(dir, "state"))
	spec := runtime.InstanceSpec{
		ID: "data-0", Workload: "data", Tier: v1alpha1.TierVM, MemoryBytes: 64 << 20, DiskDir: filepath.Join(dir, "disks", "0"),
		VM:      &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: raw, Format: v1alpha1.DiskRaw}},
		LogPath: filepath.Join(dir, "data.log"),
	}
	removeAll(t, d, spec.ID)
	if _, err := d.Start(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	write := func(cmd string) {
		t.Helper()
		out, err := d.HMP(t.Context(), spec.ID, `qemu-io -d /machine/peripheral-anon/device[0]/virtio-backend "`+cmd+`"`)
		// It prints nothing when it worked; the copies below check the data.
		if err != nil || strings.TrimSpace(out) != "" {
			t.Fatalf("qemu-io %s: %v %s", cmd, err, out)
		}
	}
	copyDisk := func(name string, req runtime.DiskCopyRequest) (runtime.DiskCopy, []byte) {
		t.Helper()
		req.Path = filepath.Join(dir, name)
		c, err := d.CopyDisk(t.Context(), spec.ID, req)
		if err != nil {
			t.Fatalf("copy %s: %v", name, err)
		}
		data, err := os.ReadFile(req.Path)
		if err != nil {
			t.Fatal(err)
		}
		if c.Size != size || int64(len(data)) != size {
			t.Fatalf("copy %s: size %d, file %d bytes; want %d", name, c.Size, len(data), size)
		}
		return c, data
	}

	write("write -P 0xaa 4M 8M")
	first, one := copyDisk("one.raw", runtime.DiskCopyRequest{Checkpoint: "one"})
	if !first.Whole || first.Reason != "" {
		t.Fatalf("first copy: %+v, want whole without a reason", first)
	}
	if !bytes.Equal(one[:1<<20], bootSector()) || !allBytes(one[4<<20:12<<20], 0xaa) || !allBytes(one[12<<20:], 0) {
		t.Fatal("the first copy does not hold the boot sector and the written pattern")
	}

	write("write -P 0xbb 6M 64k")
	write("write -z 8M 128k")
	write("write -P 0xcc 20M 4k")
	second, two := copyDisk("two.raw", runtime.DiskCopyRequest{Since: "one", Checkpoint: "two"})
	want := []runtime.Extent{{Offset: 6 << 20, Length: 64 << 10}, {Offset: 8 << 20, Length: 128 << 10}, {Offset: 20 << 20, Length: 64 << 10}}
	if second.Whole || !slices.Equal(second.Changed, want) {
		t.Fatalf("copy since one: whole %v (%s), changed %v; want only %v", second.Whole, second.Reason, second.Changed, want)
	}
	// The previous copy with the changed blocks laid over it is the disk now.
	merged := slices.Clone(one)
	for _, e := range second.Changed {
		copy(merged[e.Offset:e.Offset+e.Length], two[e.Offset:e.Offset+e.Length])
	}
	third, whole := copyDisk("three.raw", runtime.DiskCopyRequest{Checkpoint: "three", Keep: []string{"two"}})
	if !third.Whole || !bytes.Equal(merged, whole) {
		t.Fatal("the first copy with the changed blocks of the second is not the disk as a whole copy reads it")
	}
	if !allBytes(whole[8<<20:8<<20+128<<10], 0) || whole[20<<20] != 0xcc || whole[6<<20] != 0xbb {
		t.Fatal("the whole copy misses the writes")
	}

	// "one" was neither kept nor the base: it is gone.
	gone, _ := copyDisk("four.raw", runtime.DiskCopyRequest{Since: "one", Checkpoint: "four", Keep: []string{"two", "three"}})
	if !gone.Whole || !strings.Contains(gone.Reason, "no checkpoint one") {
		t.Fatalf("copy since a removed checkpoint: %+v, want whole, saying it is missing", gone)
	}
	if err := d.DropCheckpoint(t.Context(), spec.ID, "four"); err != nil {
		t.Fatal(err)
	}
	if err := d.DropCheckpoint(t.Context(), spec.ID, "four"); err != nil {
		t.Fatalf("dropping a checkpoint twice: %v", err)
	}

	restart := func(how string) {
		t.Helper()
		if how == "quit" {
			// QEMU ends as at a guest's power-off: it closes the disk and saves the bitmaps.
			_, _ = d.HMP(t.Context(), spec.ID, "quit")
		}
		if err := d.Stop(t.Context(), spec.ID, 0); err != nil {
			t.Fatal(err)
		}
		if err := d.Remove(t.Context(), spec.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Start(t.Context(), spec); err != nil {
			t.Fatal(err)
		}
	}
	// Checkpoints outlive a QEMU that closes the disk.
	restart("quit")
	write("write -P 0xdd 30M 64k")
	kept, after := copyDisk("five.raw", runtime.DiskCopyRequest{Since: "two", Checkpoint: "five", Keep: []string{"three"}})
	want = []runtime.Extent{{Offset: 30 << 20, Length: 64 << 10}}
	if kept.Whole || !slices.Equal(kept.Changed, want) {
		t.Fatalf("copy since two after a restart: whole %v (%s), changed %v; want %v", kept.Whole, kept.Reason, kept.Changed, want)
	}
	if !allBytes(after[30<<20:30<<20+64<<10], 0xdd) || !allBytes(after[:30<<20], 0) {
		t.Fatal("the copy since two holds more than the block written after the restart")
	}
	// A QEMU that is killed cannot save them: the next copy is whole, and says why.
	restart("kill")
	killed, _ := copyDisk("six.raw", runtime.DiskCopyRequest{Since: "two", Checkpoint: "six"})
	if !killed.Whole || !strings.Contains(killed.Reason, "not trustworthy") {
		t.Fatalf("copy since a checkpoint of a killed QEMU: %+v, want whole, saying why", killed)
	}
	if _, err := d.CopyDisk(t.Context(), spec.ID, runtime.DiskCopyRequest{Path: filepath.Join(dir, "seven.raw"), Since: "six", Checkpoint: "six"}); err == nil {
		t.Fatal("a copy whose new checkpoint is its base was accepted")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.qcow2")); len(left) != 0 {
		t.Errorf("copies left their targets: %v", left)
	}
}

func allBytes(b []byte, v byte) bool {
	for _, c := range b {
		if c != v {
			return false
		}
	}
	return true
}

// TestRestoreSlotDiskRefusesLinkedImages: a saved disk comes from a backup
// repository that others may write; a qcow2 that reads a host file through a
// backing or data file is refused, and a raw copy (.img) is read as raw even
// when its bytes look like such a qcow2.
func TestRestoreSlotDiskRefusesLinkedImages(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, bytes.Repeat([]byte("host secret "), 1<<14), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newVMDriver(t, filepath.Join(dir, "state"))
	slot := filepath.Join(dir, "slot")
	backed := filepath.Join(dir, "backed.qcow2")
	dataFile := filepath.Join(dir, "datafile.qcow2")
	for _, args := range [][]string{
		{"create", "-q", "-f", "qcow2", "-F", "raw", "-b", secret, backed},
		{"create", "-q", "-f", "qcow2", "-o", "data_file=" + secret, dataFile, "192K"},
	} {
		if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v %s", args, err, out)
		}
	}
	for _, from := range []string{backed, dataFile} {
		err := d.RestoreSlotDisk(t.Context(), slot, "/base.img", from)
		if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "standalone") {
			t.Errorf("restore from %s: %v, want refused as not standalone", filepath.Base(from), err)
		}
		if _, err := os.Stat(filepath.Join(slot, qemu.SlotDiskFile)); err == nil {
			t.Fatalf("restore from %s made a slot disk", filepath.Base(from))
		}
	}
	// The same bytes under a raw copy's name are only data.
	header, err := os.ReadFile(backed)
	if err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(raw, header, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.RestoreSlotDisk(t.Context(), slot, "/base.img", raw); err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(dir, "back.raw")
	if out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", filepath.Join(slot, qemu.SlotDiskFile), back).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	got, err := os.ReadFile(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(header)], header) || bytes.Contains(got, []byte("host secret")) {
		t.Error("a raw copy was not restored byte for byte")
	}
}
