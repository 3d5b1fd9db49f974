package guest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestFindKernel(t *testing.T) {
	dir := t.TempDir()
	mk := func(p string, isDir bool) {
		t.Helper()
		p = filepath.Join(dir, p)
		if isDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	_, err := FindKernel(dir)
	if err == nil || !strings.Contains(err.Error(), "make host-setup") || !strings.Contains(err.Error(), dir) {
		t.Errorf("empty dir: %v, want an error naming the dir and make host-setup", err)
	}

	mk("boot/vmlinuz-6.1.0-9-cloud-amd64", false)
	if _, err := FindKernel(dir); err == nil || !strings.Contains(err.Error(), "lib/modules") {
		t.Errorf("kernel without modules: %v, want an error about lib/modules", err)
	}

	mk("lib/modules/6.1.0-9-cloud-amd64", true)
	mk("boot/vmlinuz-6.1.0-10-cloud-amd64", false) // no modules: passed over
	k, err := FindKernel(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := Kernel{
		Version:    "6.1.0-9-cloud-amd64",
		Vmlinuz:    filepath.Join(dir, "boot/vmlinuz-6.1.0-9-cloud-amd64"),
		ModulesDir: filepath.Join(dir, "lib/modules/6.1.0-9-cloud-amd64"),
	}
	if k != want {
		t.Errorf("FindKernel = %+v, want %+v", k, want)
	}
}

func TestModuleName(t *testing.T) {
	tests := []struct {
		file, name string
		ok         bool
	}{
		{"kernel/drivers/net/virtio_net.ko", "virtio_net", true},
		{"virtio-blk.ko.xz", "virtio_blk", true},
		{"button.ko.zst", "button", true},
		{"modules.order", "", false},
		{"virtio.ko.sig", "", false},
	}
	for _, tt := range tests {
		if name, ok := ModuleName(tt.file); name != tt.name || ok != tt.ok {
			t.Errorf("ModuleName(%q) = %q, %v; want %q, %v", tt.file, name, ok, tt.name, tt.ok)
		}
	}
}

func TestParseCPUMHz(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"processor\t: 0\ncpu MHz\t\t: 2095.992\ncpu MHz\t\t: 3000.000\n", 2095992, false},
		{"cpu MHz : 1000\n", 1000000, false},
		{"processor\t: 0\n", 0, true},
		{"cpu MHz\t\t: fast\n", 0, true},
	}
	for _, tt := range tests {
		got, err := parseCPUMHz(strings.NewReader(tt.in))
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseCPUMHz(%q) = %d, %v; want %d (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestKernelCmdline(t *testing.T) {
	kvm := KernelCmdline(true)
	for _, want := range []string{"console=ttyS0", "quiet", "panic=-1", "pci=off"} {
		if !strings.Contains(kvm, want) {
			t.Errorf("KernelCmdline(true) = %q, lacks %q", kvm, want)
		}
	}
	if strings.Contains(kvm, "tsc") {
		t.Errorf("KernelCmdline(true) = %q: KVM needs no TSC parameters", kvm)
	}
	khz, err := TSCKHz()
	if err != nil {
		t.Skipf("this host's /proc/cpuinfo has no frequency: %v", err)
	}
	tcg := KernelCmdline(false)
	if !strings.HasPrefix(tcg, kvm) || !strings.Contains(tcg, " tsc=reliable") ||
		!strings.Contains(tcg, " tsc_early_khz="+strconv.Itoa(khz)) {
		t.Errorf("KernelCmdline(false) = %q, want %q plus tsc_early_khz=%d tsc=reliable", tcg, kvm, khz)
	}
}
