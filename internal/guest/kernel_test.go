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
	for _, want := range []string{"console=ttyS0", "quiet", "panic=-1", "pci=off", "virtio_mmio.queue_size_max=128", "virtio_console.rx_bufs=32"} {
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

// strataConfig is the head of a .config as the kernel's build writes it, for a
// kernel without module support; extra lines go at its end.
func strataConfig(extra ...string) string {
	lines := []string{
		"#",
		"# Automatically generated file; DO NOT EDIT.",
		"# Linux/x86 6.1.192 Kernel Configuration",
		"#",
		`CONFIG_CC_VERSION_TEXT="gcc (Debian 12.2.0-14+deb12u1) 12.2.0"`,
		"CONFIG_CC_IS_GCC=y",
		`CONFIG_LOCALVERSION="-strata"`,
		"CONFIG_64BIT=y",
		"# CONFIG_MODULES is not set",
		"CONFIG_VIRTIO_MMIO=y",
		"CONFIG_VIRTIO_PCI=y",
		"CONFIG_VIRTIO_BLK=y",
		"CONFIG_VIRTIO_NET=y",
		"CONFIG_VIRTIO_CONSOLE=y",
		"CONFIG_SERIAL_8250_CONSOLE=y",
		"CONFIG_EXT4_FS=y",
		"CONFIG_DEVTMPFS=y",
	}
	return strings.Join(append(lines, extra...), "\n") + "\n"
}

// writeStrataKernel lays out a kernel without modules in dir as host-setup
// installs strata's own: boot/vmlinuz-<version> and boot/config-<version>.
func writeStrataKernel(t *testing.T, dir, version, config string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "boot", "vmlinuz-"+version), []byte("bzImage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "boot", "config-"+version), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFindKernelBuiltin(t *testing.T) {
	dir := t.TempDir()
	// A config that allows modules, with no lib/modules: not bootable.
	writeStrataKernel(t, dir, "6.1.192-strata", strings.Replace(strataConfig(), "# CONFIG_MODULES is not set", "CONFIG_MODULES=y", 1))
	if _, err := FindKernel(dir); err == nil || !strings.Contains(err.Error(), "boot/config-") {
		t.Errorf("modular kernel without lib/modules: %v, want an error naming boot/config-", err)
	}
	writeStrataKernel(t, dir, "6.1.192-strata", strataConfig())
	k, err := FindKernel(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := Kernel{
		Version: "6.1.192-strata", Vmlinuz: filepath.Join(dir, "boot/vmlinuz-6.1.192-strata"),
		Builtin: true, Config: filepath.Join(dir, "boot/config-6.1.192-strata"),
	}
	if k != want {
		t.Errorf("FindKernel = %+v, want %+v", k, want)
	}
	if d := k.Describe(); !strings.Contains(d, "strata's own") || !strings.Contains(d, "6.1.192-strata") {
		t.Errorf("Describe = %q, want the version and strata's own", d)
	}
	if files, err := k.moduleFiles(Modules); err != nil || len(files) != 0 {
		t.Errorf("moduleFiles of a kernel without modules = %v, %v; want none", files, err)
	}
}

func TestLocateKernel(t *testing.T) {
	strata, cloud, other := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{"boot", "lib/modules/6.1.0-57-cloud-amd64"} {
		if err := os.MkdirAll(filepath.Join(cloud, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(cloud, "boot/vmlinuz-6.1.0-57-cloud-amd64"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// strata's kernel not built (yet): the cloud kernel.
	k, err := locateKernel("", strata, cloud)
	if err != nil || k.Version != "6.1.0-57-cloud-amd64" || k.Builtin {
		t.Errorf("without strata's kernel: %+v, %v; want the cloud kernel", k, err)
	}
	// Built: strata's own.
	writeStrataKernel(t, strata, "6.1.192-strata", strataConfig())
	if k, err := locateKernel("", strata, cloud); err != nil || k.Version != "6.1.192-strata" || !k.Builtin {
		t.Errorf("with strata's kernel: %+v, %v; want it", k, err)
	}
	// A directory given is the only one looked at.
	if k, err := locateKernel(cloud, strata, cloud); err != nil || k.Version != "6.1.0-57-cloud-amd64" {
		t.Errorf("given the cloud dir: %+v, %v", k, err)
	}
	if _, err := locateKernel(other, strata, cloud); err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("given an empty dir: %v, want an error naming it", err)
	}
	// Neither: the error names both places.
	_, err = locateKernel("", other, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "make host-setup") {
		t.Errorf("no kernel anywhere: %v, want an error naming both dirs and make host-setup", err)
	}
}

// TestStrataConfigBuildsInWhatGuestsNeed: the configuration host-setup builds strata's own
// kernel with (hack/guest-kernel/strata.config, options on top of allnoconfig) sets every
// option an image VM and a node VM check for, turns module support off only by leaving it
// out, and has nothing but comments, blank lines and CONFIG_X=value lines.
func TestStrataConfigBuildsInWhatGuestsNeed(t *testing.T) {
	p := filepath.Join("..", "..", "hack", "guest-kernel", "strata.config")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(k, "CONFIG_") || v == "" {
			t.Errorf("%s:%d: %q is not CONFIG_X=value", p, i+1, line)
			continue
		}
		if _, dup := set[k]; dup {
			t.Errorf("%s:%d: %s is set twice", p, i+1, k)
		}
		set[k] = v
	}
	for _, o := range append(append([]string{}, BuiltinOptions...), NodeBuiltinOptions...) {
		if set[o] != "y" {
			t.Errorf("%s does not set %s=y, which guests need built in", p, o)
		}
	}
	if v, ok := set["CONFIG_MODULES"]; ok {
		t.Errorf("%s sets CONFIG_MODULES=%s; strata's kernel has no modules (the guest init loads none)", p, v)
	}
}
