package guest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DefaultKernelDir is where `make host-setup` installs strata's guest
// kernel, laid out like the extracted Debian package: boot/vmlinuz-<version>
// and lib/modules/<version>/.
const DefaultKernelDir = "/opt/strata/guest/kernel"

// StrataKernelDir is where `make host-setup` installs the guest kernel strata
// builds itself from Debian's kernel source (hack/guest-kernel): boot/
// vmlinuz-<version> with its boot/config-<version>, everything the guest
// needs built in and no modules. Where it is, VMs boot it rather than the
// cloud kernel in DefaultKernelDir (see LocateKernel).
const StrataKernelDir = "/opt/strata/guest/kernel-strata"

// Modules are the kernel modules the guest init loads, in this order (each
// after those it depends on): virtio over MMIO and PCI, the block and network
// devices, the serial ports, the balloon (free page reporting), and the ACPI
// power button with its input events.
// A module the kernel has built in, or lacks, is skipped.
var Modules = []string{
	"virtio_ring",
	"virtio",
	"virtio_mmio",
	"virtio_pci_legacy_dev",
	"virtio_pci_modern_dev",
	"virtio_pci",
	"virtio_blk",
	"failover",
	"net_failover",
	"virtio_net",
	"virtio_console",
	"virtio_balloon",
	"evdev",
	"button",
}

// NodeModules are the modules a node guest loads after Modules: overlayfs
// for the containers' root filesystems, and virtiofs (over fuse) for images
// shared from the host as directories.
var NodeModules = []string{"overlay", "fuse", "virtiofs"}

// ModuleName is the name of the module in file name (a path, or a base
// name like "virtio_net.ko" or "virtio-net.ko.xz"), spelled with
// underscores as the kernel does; ok is false for a file that is no module.
func ModuleName(file string) (name string, ok bool) {
	base := filepath.Base(file)
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if n, found := strings.CutSuffix(base, ext); found {
			return strings.ReplaceAll(n, "-", "_"), true
		}
	}
	return "", false
}

// Kernel is strata's guest kernel on the host.
type Kernel struct {
	// Version is the kernel release (uname -r), e.g. "6.1.0-56-cloud-amd64".
	Version string
	// Vmlinuz is the kernel image QEMU boots.
	Vmlinuz string
	// ModulesDir is lib/modules/<Version>, the kernel's modules; empty for
	// a kernel with everything built in.
	ModulesDir string
	// Builtin is a kernel without module support (its boot/config-<Version>
	// has CONFIG_MODULES unset): the guest init loads nothing, and the
	// drivers the guest needs (BuiltinOptions) must be built in.
	Builtin bool
	// Config is the kernel's boot/config-<Version>, if it has one.
	Config string
}

// BuiltinOptions are the kernel options a kernel without modules must have
// set to y for an image VM to boot: virtio over MMIO and PCI, the root disk,
// the network, the agent's and exit report's serial ports, the console.
var BuiltinOptions = []string{
	"CONFIG_VIRTIO_MMIO", "CONFIG_VIRTIO_PCI", "CONFIG_VIRTIO_BLK", "CONFIG_VIRTIO_NET",
	"CONFIG_VIRTIO_CONSOLE", "CONFIG_SERIAL_8250_CONSOLE", "CONFIG_EXT4_FS", "CONFIG_DEVTMPFS",
}

// NodeBuiltinOptions are the options a node VM needs on top of BuiltinOptions.
var NodeBuiltinOptions = []string{"CONFIG_OVERLAY_FS", "CONFIG_VIRTIO_FS", "CONFIG_CGROUPS", "CONFIG_SECCOMP_FILTER"}

// Describe says which kernel k is, for the driver's check and errors.
func (k Kernel) Describe() string {
	if k.Builtin {
		return fmt.Sprintf("%s (strata's own, everything built in; %s)", k.Version, k.Vmlinuz)
	}
	return fmt.Sprintf("%s (with modules; %s)", k.Version, k.Vmlinuz)
}

// LocateKernel finds the kernel VMs boot: in dir when dir is set, else
// strata's own kernel in StrataKernelDir and, while that is not built (or
// its build failed), Debian's cloud kernel in DefaultKernelDir.
func LocateKernel(dir string) (Kernel, error) {
	return locateKernel(dir, StrataKernelDir, DefaultKernelDir)
}

func locateKernel(dir, strataDir, cloudDir string) (Kernel, error) {
	if dir != "" {
		return FindKernel(dir)
	}
	k, err := FindKernel(strataDir)
	if err == nil {
		return k, nil
	}
	k, cerr := FindKernel(cloudDir)
	if cerr != nil {
		return Kernel{}, fmt.Errorf("%w (nor is strata's own kernel in %s)", cerr, strataDir)
	}
	return k, nil
}

// readKernelConfig reads the options set in a kernel's .config file
// (CONFIG_X=value lines; "# CONFIG_X is not set" leaves X out).
func readKernelConfig(path string) (map[string]string, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the kernel directory is the operator's choice
	if err != nil {
		return nil, err
	}
	defer f.Close()
	opts := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "CONFIG_") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			opts[k] = v
		}
	}
	return opts, sc.Err()
}

// missingBuiltin lists the options of want that k's configuration does not
// set to y; for a kernel with modules it is empty.
func (k Kernel) missingBuiltin(want []string) ([]string, error) {
	if !k.Builtin {
		return nil, nil
	}
	opts, err := readKernelConfig(k.Config)
	if err != nil {
		return nil, fmt.Errorf("guest kernel %s: %w", k.Version, err)
	}
	var missing []string
	for _, o := range want {
		if opts[o] != "y" {
			missing = append(missing, o)
		}
	}
	return missing, nil
}

// FindKernel finds the kernel image and its modules under dir (see
// DefaultKernelDir and StrataKernelDir for the layouts). With several, it
// takes the highest version that has its modules or is built without module
// support.
func FindKernel(dir string) (Kernel, error) {
	images, err := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if err != nil {
		return Kernel{}, err
	}
	if len(images) == 0 {
		return Kernel{}, fmt.Errorf("guest kernel: no boot/vmlinuz-* under %s; run `make host-setup` to install strata's guest kernel there", dir)
	}
	slices.Sort(images)
	for _, img := range slices.Backward(images) {
		version := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
		mods := filepath.Join(dir, "lib", "modules", version)
		config := filepath.Join(dir, "boot", "config-"+version)
		if _, err := os.Stat(config); err != nil { //nolint:gosec // G703: the kernel directory is the operator's choice
			config = ""
		}
		if st, err := os.Stat(mods); err == nil && st.IsDir() { //nolint:gosec // G703: the kernel directory is the operator's choice
			return Kernel{Version: version, Vmlinuz: img, ModulesDir: mods, Config: config}, nil
		}
		if config == "" {
			continue
		}
		opts, err := readKernelConfig(config)
		if err != nil {
			return Kernel{}, fmt.Errorf("guest kernel: %w", err)
		}
		if opts["CONFIG_MODULES"] != "y" {
			return Kernel{Version: version, Vmlinuz: img, Builtin: true, Config: config}, nil
		}
	}
	return Kernel{}, fmt.Errorf("guest kernel: %s has no lib/modules/<version>/ for %s, nor a boot/config-<version> of a kernel without modules; run `make host-setup` to reinstall strata's guest kernel", dir, filepath.Base(images[len(images)-1]))
}

// moduleFiles maps the name of each module of names that k has to its
// path relative to k.ModulesDir.
func (k Kernel) moduleFiles(names []string) (map[string]string, error) {
	if k.Builtin {
		return map[string]string{}, nil
	}
	want := map[string]bool{}
	for _, m := range names {
		want[m] = true
	}
	found := map[string]string{}
	err := filepath.WalkDir(k.ModulesDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name, ok := ModuleName(p); ok && !d.IsDir() && want[name] {
			if _, dup := found[name]; !dup {
				rel, err := filepath.Rel(k.ModulesDir, p)
				if err != nil {
					return err
				}
				found[name] = filepath.ToSlash(rel)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("guest kernel modules in %s: %w", k.ModulesDir, err)
	}
	return found, nil
}

// TSCKHz is the host CPU's frequency in kHz: the first "cpu MHz" line of
// /proc/cpuinfo. Under TCG the guest kernel needs it (tsc_early_khz) to boot
// a microvm, which has no other clock to calibrate the TSC against.
func TSCKHz() (int, error) {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseCPUMHz(f)
}

func parseCPUMHz(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "cpu MHz" {
			continue
		}
		mhz, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || mhz <= 0 {
			return 0, fmt.Errorf("/proc/cpuinfo: cpu MHz %q is not a frequency", strings.TrimSpace(val))
		}
		return int(mhz * 1000), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("/proc/cpuinfo has no \"cpu MHz\" line")
}

// The sizes of an image VM's virtio queues, set on its kernel command line
// (parameters of strata's kernel patches, hack/guest-kernel/patches/; other
// kernels ignore them). QEMU's virtio-mmio offers every queue 1024 entries,
// and the guest's drivers keep a receive buffer per entry: the
// virtio-serial device's control queue and two ports held 12 MiB of a 128
// MiB guest in pages the agent channel never needs.
const (
	// MMIOQueueSizeMax caps every virtio-mmio queue (virtio_mmio.queue_size_max),
	// the size a virtio-serial queue has over PCI.
	MMIOQueueSizeMax = 128
	// ConsoleRxBufs is how many page-sized receive buffers the console driver
	// posts to each receiving queue of the serial device (virtio_console.rx_bufs):
	// 128 KiB in flight from the host on the agent's port.
	ConsoleRxBufs = 32
)

// KernelCmdline is the kernel command line for image microVMs: the console
// on the first serial port, quiet, no PCI probing (microvm has virtio-mmio
// only), panic=-1 so that a guest panic reboots, which ends QEMU run with
// -no-reboot, and the queue sizes above. Without KVM it adds the TSC
// frequency, without which a microvm hangs at boot under TCG; if TSCKHz
// fails it is left out (call TSCKHz to learn why).
func KernelCmdline(kvm bool) string {
	cmdline := fmt.Sprintf("console=ttyS0 quiet panic=-1 pci=off virtio_mmio.queue_size_max=%d virtio_console.rx_bufs=%d",
		MMIOQueueSizeMax, ConsoleRxBufs)
	if !kvm {
		if khz, err := TSCKHz(); err == nil {
			cmdline += fmt.Sprintf(" tsc_early_khz=%d tsc=reliable", khz)
		}
	}
	return cmdline
}
