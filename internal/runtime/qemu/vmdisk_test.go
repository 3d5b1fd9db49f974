package qemu_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
	"strata.dev/strata/internal/testenv"
)

// convertDisk writes the boot sector disk in another hypervisor's format with qemu-img.
func convertDisk(t *testing.T, dir, name, format string, opts ...string) string {
	t.Helper()
	raw := filepath.Join(dir, "boot.img")
	if err := os.WriteFile(raw, bootSector(), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	args := append([]string{"convert", "-f", "raw", "-O", format}, opts...)
	if b, err := exec.Command("qemu-img", append(args, raw, out)...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert to %s: %v: %s", format, err, b)
	}
	return out
}

// ovf is an OVF 1.0 descriptor naming one disk file, as exporters write it.
const ovf = `<?xml version="1.0" encoding="UTF-8"?>
<Envelope vmw:buildId="build-1" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
    <File ovf:href="legacy-disk1.vmdk" ovf:id="file1" ovf:size="%d"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="legacy">
    <Info>A virtual machine</Info>
  </VirtualSystem>
</Envelope>
`

// writeOVA packs an .ovf and a streamOptimized VMDK into an OVA, the descriptor first.
func writeOVA(t *testing.T, dir, vmdk string, extra ...*tar.Header) string {
	t.Helper()
	disk, err := os.ReadFile(vmdk)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	desc := []byte(strings.Replace(ovf, "%d", "0", 1))
	for _, f := range []struct {
		name string
		data []byte
	}{{"legacy.ovf", desc}, {"legacy-disk1.vmdk", disk}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(f.data)
	}
	for _, h := range extra {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	_ = tw.Close()
	p := filepath.Join(dir, "legacy.ova")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConvertedDisks boots the boot sector from a streamOptimized VMDK (on SATA, with
// an e1000-less spec), a VHD, a VHDX and an OVA: each is converted to qcow2 once, with
// its progress in the instance's log, reused by the next start, and left untouched.
func TestConvertedDisks(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	vmdk := convertDisk(t, dir, "legacy.vmdk", "vmdk", "-o", "subformat=streamOptimized")
	tests := []struct {
		name string
		disk v1alpha1.Disk
	}{
		{"vmdk on sata", v1alpha1.Disk{Path: vmdk, Bus: v1alpha1.DiskBusSATA}},
		{"vhd on scsi", v1alpha1.Disk{Path: convertDisk(t, dir, "legacy.vhd", "vpc"), Bus: v1alpha1.DiskBusSCSI}},
		{"vhdx on ide", v1alpha1.Disk{Path: convertDisk(t, dir, "legacy.vhdx", "vhdx"), Bus: v1alpha1.DiskBusIDE}},
		{"ova", v1alpha1.Disk{Path: writeOVA(t, dir, vmdk), Format: v1alpha1.DiskOVA}},
	}
	state := filepath.Join(dir, "state")
	d := newVMDriver(t, state)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := os.ReadFile(tt.disk.Path)
			if err != nil {
				t.Fatal(err)
			}
			beforeInfo, _ := os.Stat(tt.disk.Path)
			id := "conv-" + string(rune('a'+i))
			var told []string
			spec := runtime.InstanceSpec{
				ID: id, Workload: "legacy", Tier: v1alpha1.TierVM, MemoryBytes: 64 << 20,
				VM: &v1alpha1.VMSource{Disk: &tt.disk}, LogPath: filepath.Join(dir, id+".log"),
				Progress: func(msg string) { told = append(told, msg) },
			}
			removeAll(t, d, id)
			for round := range 2 {
				if _, err := d.Start(t.Context(), spec); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the boot sector's message in the log", 60*time.Second, func() bool {
					b, _ := os.ReadFile(spec.LogPath)
					return bytes.Count(b, []byte(bootMessage)) == round+1
				})
				if err := d.Stop(t.Context(), id, 0); err != nil {
					t.Fatal(err)
				}
				if err := d.Remove(t.Context(), id); err != nil {
					t.Fatal(err)
				}
			}
			if len(told) != 2 || !strings.HasPrefix(told[0], "converting vm.disk "+tt.disk.Path) || !strings.HasPrefix(told[1], "converted vm.disk") {
				t.Errorf("told %q; want the conversion's start and end, once", told)
			}
			log, _ := os.ReadFile(spec.LogPath)
			if n := bytes.Count(log, []byte("to qcow2: 100%")); n != 1 || !bytes.Contains(log, []byte("strata: converting vm.disk "+tt.disk.Path)) {
				t.Errorf("want one conversion, with progress, in the log; got %d:\n%s", n, log)
			}
			after, err := os.ReadFile(tt.disk.Path)
			afterInfo, _ := os.Stat(tt.disk.Path)
			if err != nil || !bytes.Equal(before, after) || !afterInfo.ModTime().Equal(beforeInfo.ModTime()) {
				t.Errorf("the original disk changed (%v)", err)
			}
		})
	}
	conv, _ := filepath.Glob(filepath.Join(state, "disks", "*"))
	if len(conv) != len(tests) {
		t.Errorf("conversions %v: want one qcow2 per disk and nothing else", conv)
	}
	for _, c := range conv {
		if !strings.HasSuffix(c, ".qcow2") {
			t.Errorf("left in the conversion directory: %s", c)
		}
	}

	// A changed disk (a new modification time) is converted again.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(vmdk, later, later); err != nil {
		t.Fatal(err)
	}
	spec := runtime.InstanceSpec{ID: "conv-again", Workload: "legacy", Tier: v1alpha1.TierVM, MemoryBytes: 64 << 20,
		VM: &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: vmdk}}, LogPath: filepath.Join(dir, "again.log")}
	removeAll(t, d, spec.ID)
	if _, err := d.Start(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	if log, _ := os.ReadFile(spec.LogPath); !bytes.Contains(log, []byte("to qcow2: 100%")) {
		t.Errorf("a changed disk was not converted again:\n%s", log)
	}
}

// TestBadConvertedDisks refuses an OVA that leads out of its directory or names no
// disk, and a VMDK that is not one, with errors that say so.
func TestBadConvertedDisks(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	vmdk := convertDisk(t, dir, "legacy.vmdk", "vmdk", "-o", "subformat=streamOptimized")
	escape := writeOVA(t, dir, vmdk, &tar.Header{Name: "../../escape.vmdk", Mode: 0o644, Typeflag: tar.TypeReg})
	escaped := filepath.Join(dir, "escape.ova")
	if err := os.Rename(escape, escaped); err != nil {
		t.Fatal(err)
	}
	noOVF := filepath.Join(dir, "nodesc.ova")
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	_ = tw.WriteHeader(&tar.Header{Name: "disk.vmdk", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("abc"))
	_ = tw.Close()
	if err := os.WriteFile(noOVF, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	notVMDK := filepath.Join(dir, "text.vmdk")
	if err := os.WriteFile(notVMDK, []byte("not a disk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newVMDriver(t, filepath.Join(dir, "state"))
	for i, tt := range []struct {
		name, path, want string
	}{
		{"ova leading out", escaped, "leads outside"},
		{"ova without descriptor", noOVF, "no .ovf descriptor"},
		{"not a vmdk", notVMDK, "not a usable vmdk image"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := "badconv-" + string(rune('a'+i))
			_, err := d.Start(t.Context(), runtime.InstanceSpec{ID: id, Workload: "bad", Tier: v1alpha1.TierVM,
				VM: &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: tt.path}}})
			if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("start: %v; want ErrInvalid saying %q", err, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape.vmdk")); err == nil {
		t.Error("the OVA wrote outside its directory")
	}
}

// TestUEFI boots OVMF, whose boot manager reports on the serial console, with a private
// copy of the variable store; without OVMF the start says what to install.
func TestUEFI(t *testing.T) {
	needQEMU(t)
	if _, err := os.Stat(qemu.DefaultOVMFCode); err != nil {
		testenv.Skipf(t, "skipping: %v (Debian's ovmf package: make host-setup)", err)
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "empty.img")
	if err := os.WriteFile(raw, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	d := newVMDriver(t, state)
	spec := runtime.InstanceSpec{ID: "efi", Workload: "efi", Tier: v1alpha1.TierVM, MemoryBytes: 128 << 20,
		VM:      &v1alpha1.VMSource{Firmware: v1alpha1.FirmwareUEFI, Disk: &v1alpha1.Disk{Path: raw, Format: v1alpha1.DiskRaw}},
		LogPath: filepath.Join(dir, "efi.log")}
	removeAll(t, d, spec.ID)
	if _, err := d.Start(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state, "efi", "efivars.fd")); err != nil {
		t.Errorf("no private variable store: %v", err)
	}
	// OVMF's boot manager tries the disk, which holds no EFI loader, and says so.
	waitFor(t, "OVMF's boot manager on the console", 90*time.Second, func() bool {
		b, _ := os.ReadFile(spec.LogPath)
		return bytes.Contains(b, []byte("BdsDxe"))
	})

	nofw, err := qemu.New(t.Context(), qemu.Config{StateDir: filepath.Join(dir, "state2"), OVMFCode: filepath.Join(dir, "no-ovmf.fd")})
	if err != nil {
		t.Fatal(err)
	}
	defer nofw.Close()
	spec.ID = "efi-missing"
	_, err = nofw.Start(t.Context(), spec)
	if !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), "needs OVMF") || !strings.Contains(err.Error(), "ovmf package") {
		t.Errorf("start without OVMF: %v", err)
	}
}
