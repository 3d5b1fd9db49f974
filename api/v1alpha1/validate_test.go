package v1alpha1

import (
	"strings"
	"testing"
)

// TestValidateHostileWorkloads feeds admission the inputs of an attacker's tests: each must
// be refused with an error on the field at fault, and its fixed counterpart accepted.
func TestValidateHostileWorkloads(t *testing.T) {
	big := strings.Repeat("x", 7<<20)
	tests := []struct {
		name   string
		change func(w *Workload)
		field  string // the field in error; empty for a valid workload
		detail string
	}{
		{"valid", func(*Workload) {}, "", ""},
		{"7 MB annotation", func(w *Workload) { w.Metadata.Annotations = map[string]string{"note": big} },
			"metadata.annotations", "256 KiB"},
		{"annotations just under the cap", func(w *Workload) {
			w.Metadata.Annotations = map[string]string{"note": strings.Repeat("x", MaxAnnotationBytes-4)}
		}, "", ""},
		{"annotations one byte over the cap", func(w *Workload) {
			w.Metadata.Annotations = map[string]string{"note": strings.Repeat("x", MaxAnnotationBytes-3)}
		}, "metadata.annotations", "262144"},
		{"2 MB of env", func(w *Workload) { w.Spec.Env = map[string]string{"BIG": big[:2<<20]} }, "spec", "1 MiB"},
		{"mountPath /", func(w *Workload) { w.Spec.Volumes[0].MountPath = "/" }, "spec.volumes[0].mountPath", "root directory"},
		{"mountPath /proc/sys", func(w *Workload) { w.Spec.Volumes[0].MountPath = "/proc/sys" }, "spec.volumes[0].mountPath", "under it"},
		{"mountPath /sys", func(w *Workload) { w.Spec.Volumes[0].MountPath = "/sys" }, "spec.volumes[0].mountPath", "/sys"},
		{"mountPath /dev/shm", func(w *Workload) { w.Spec.Volumes[0].MountPath = "/dev/shm" }, "spec.volumes[0].mountPath", "/dev"},
		{"mountPath unclean", func(w *Workload) { w.Spec.Volumes[0].MountPath = "/data/../proc" }, "spec.volumes[0].mountPath", "use /proc"},
		{"mountPath relative", func(w *Workload) { w.Spec.Volumes[0].MountPath = "data" }, "spec.volumes[0].mountPath", "absolute"},
		{"mountPath /devices is not /dev", func(w *Workload) { w.Spec.Volumes[0].MountPath = "/devices" }, "", ""},
		{"env key with =", func(w *Workload) { w.Spec.Env = map[string]string{"A=B": "c"} }, "spec.env[A=B]", "without '='"},
		{"env key empty", func(w *Workload) { w.Spec.Env = map[string]string{"": "c"} }, "spec.env[]", "non-empty"},
		{"env key with NUL", func(w *Workload) { w.Spec.Env = map[string]string{"A\x00B": "c"} }, "spec.env[A\x00B]", "printable ASCII"},
		{"env value with NUL", func(w *Workload) { w.Spec.Env = map[string]string{"A": "b\x00c"} }, "spec.env[A]", "NUL"},
		{"env key with dots and dashes", func(w *Workload) { w.Spec.Env = map[string]string{"my.env-name": "1"} }, "", ""},
		{"image with ../", func(w *Workload) { w.Spec.Image = "localhost/../../etc:1" }, "spec.image", "not an image reference"},
		{"image with upper case", func(w *Workload) { w.Spec.Image = "localhost/Shop/web:1" }, "spec.image", "not an image reference"},
		{"image by digest", func(w *Workload) {
			w.Spec.Image = "busybox@sha256:" + strings.Repeat("ab", 32)
		}, "", ""},
		{"vm kernel /etc/shadow is left to the daemon", vmKernel("/etc/shadow"), "", ""},
		{"vm kernel under /proc", vmKernel("/proc/self/mem"), "spec.vm.kernel", "under /proc"},
		{"vm kernel escaping", vmKernel("../../etc/shadow"), "spec.vm.kernel", "images directory"},
		{"vm kernel unclean", vmKernel("/var/lib/strata/images/../../../etc/shadow"), "spec.vm.kernel", "clean path"},
		{"vm kernel relative", vmKernel("vmlinuz"), "", ""},
		{"vm initrd /sys", func(w *Workload) { vmKernel("vmlinuz")(w); w.Spec.VM.Initrd = "/sys/kernel/x" }, "spec.vm.initrd", "/sys"},
		{"vm disk /dev/vda", vmDisk("/dev/vda"), "spec.vm.disk.path", "under /dev"},
		{"vm disk relative", vmDisk("legacy.qcow2"), "", ""},
		{"vm disk vmdk on sata, uefi, e1000", func(w *Workload) {
			vmDisk("ds1/win/win.vmdk")(w)
			w.Spec.VM.Disk.Format, w.Spec.VM.Disk.Bus = DiskVMDK, DiskBusSATA
			w.Spec.VM.Firmware, w.Spec.VM.Network = FirmwareUEFI, &VMNetwork{Model: NICE1000}
		}, "", ""},
		{"vm disk format vdi", func(w *Workload) { vmDisk("a.vdi")(w); w.Spec.VM.Disk.Format = "vdi" }, "spec.vm.disk.format", "vhdx"},
		{"vm disk bus nvme", func(w *Workload) { vmDisk("a.qcow2")(w); w.Spec.VM.Disk.Bus = "nvme" }, "spec.vm.disk.bus", "sata"},
		{"vm firmware efi", func(w *Workload) { vmDisk("a.qcow2")(w); w.Spec.VM.Firmware = "efi" }, "spec.vm.firmware", "uefi"},
		{"vm nic rtl8139", func(w *Workload) {
			vmDisk("a.qcow2")(w)
			w.Spec.VM.Network = &VMNetwork{Model: "rtl8139"}
		}, "spec.vm.network.model", "e1000"},
		{"vm containerDisk with ../", func(w *Workload) {
			w.Spec.Isolation = Isolation(TierVM)
			w.Spec.VM = &VMSource{ContainerDisk: "registry.example/../disk:1"}
		}, "spec.vm.containerDisk", "not an image reference"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &Workload{Metadata: ObjectMeta{Name: "web"}, Spec: WorkloadSpec{
				Image:   "localhost/shop/web:1.4",
				Volumes: []Volume{{Name: "data", MountPath: "/data"}},
			}}
			tc.change(w)
			w.SetDefaults()
			errs := ValidateWorkload(w)
			if tc.field == "" {
				if len(errs) > 0 {
					t.Fatalf("refused: %v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tc.field || !strings.Contains(errs[0].Error(), tc.detail) {
				t.Fatalf("errors %v, want one on %s saying %q", errs, tc.field, tc.detail)
			}
			if len(errs[0].Error()) > 1000 {
				t.Errorf("the error is %d bytes long: it must not echo the input", len(errs[0].Error()))
			}
		})
	}
}

func vmKernel(k string) func(*Workload) {
	return func(w *Workload) {
		w.Spec.Isolation = Isolation(TierVM)
		w.Spec.VM = &VMSource{Kernel: k}
	}
}

func vmDisk(p string) func(*Workload) {
	return func(w *Workload) {
		w.Spec.Isolation = Isolation(TierVM)
		w.Spec.VM = &VMSource{Disk: &Disk{Path: p, Format: DiskQCOW2}}
	}
}

// TestValidateSegmentSize refuses a segment with oversized annotations.
func TestValidateSegmentSize(t *testing.T) {
	s := &Segment{Metadata: ObjectMeta{Name: "a", Annotations: map[string]string{"x": strings.Repeat("y", 300<<10)}}}
	s.SetDefaults()
	errs := ValidateSegment(s)
	if len(errs) != 1 || errs[0].Field != "metadata.annotations" {
		t.Fatalf("errors %v, want one on metadata.annotations", errs)
	}
}

// TestDiskFormatDefault infers an unset disk format from the file's extension.
func TestDiskFormatDefault(t *testing.T) {
	for path, want := range map[string]DiskFormat{
		"ds1/web01/web01.vmdk": DiskVMDK, "web.VHD": DiskVHD, "web.vhdx": DiskVHDX, "app.ova": DiskOVA,
		"disk.img": DiskRaw, "disk.raw": DiskRaw, "disk.qcow2": DiskQCOW2, "legacy": DiskQCOW2, "a.d/disk": DiskQCOW2,
	} {
		w := &Workload{Metadata: ObjectMeta{Name: "vm"}, Spec: WorkloadSpec{VM: &VMSource{Disk: &Disk{Path: path}}}}
		w.SetDefaults()
		if got := w.Spec.VM.Disk.Format; got != want {
			t.Errorf("%s: format %q, want %q", path, got, want)
		}
	}
	w := &Workload{Metadata: ObjectMeta{Name: "vm"}, Spec: WorkloadSpec{VM: &VMSource{Disk: &Disk{Path: "x.vmdk", Format: DiskRaw}}}}
	w.SetDefaults()
	if w.Spec.VM.Disk.Format != DiskRaw {
		t.Errorf("a given format was replaced: %q", w.Spec.VM.Disk.Format)
	}
}
