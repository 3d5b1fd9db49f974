package qemu_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
)

// Stand-ins for QEMU, one per way a host's KVM behaves. Each records its PID and
// refuses to probe with anything but the CPU model VMs run with under KVM.
const (
	qemuKVMWorks = `exit 85`
	qemuAborts   = `echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69" >&2
echo "qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion failed." >&2
kill -ABRT $$`
	qemuHangs = `sleep 60`
)

// standIn writes a QEMU stand-in running body and returns its path, a file that
// counts its runs, and a file holding the PID of its last run.
func standIn(t *testing.T, body string) (prog, runs, pidFile string) {
	t.Helper()
	dir := t.TempDir()
	prog, runs, pidFile = filepath.Join(dir, "qemu"), filepath.Join(dir, "runs"), filepath.Join(dir, "pid")
	script := "#!/bin/sh\n" +
		"echo run >>" + runs + "\n" +
		"echo $$ >" + pidFile + "\n" +
		`case " $* " in *" -accel kvm -cpu host "*) ;; *) echo "stand-in: not a KVM probe: $*" >&2; exit 3;; esac` + "\n" +
		body + "\n"
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return prog, runs, pidFile
}

// kvmDevice returns a file that opens for reading and writing, as a /dev/kvm that
// cannot run guests does.
func kvmDevice(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kvm")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newAccelDriver(t *testing.T, cfg qemu.Config) *qemu.Driver {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	cfg.QEMUImg = "/bin/true"
	d, err := qemu.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("qemu.New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if left, _ := os.ReadDir(cfg.StateDir); len(left) > 0 {
		t.Errorf("the probe left %s in the state directory, where only instances belong", left[0].Name())
	}
	return d
}

// qemuCheck returns the driver's qemu check.
func qemuCheck(t *testing.T, d *qemu.Driver) runtime.Check {
	t.Helper()
	for _, c := range d.Probe(t.Context()) {
		if c.Name == "qemu" {
			return c
		}
	}
	t.Fatal("the driver has no qemu check")
	return runtime.Check{}
}

func runCount(t *testing.T, runs string) int {
	t.Helper()
	data, err := os.ReadFile(runs)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "run\n")
}

func TestAccelChoice(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     string
		noDevice bool
		accel    string
		reason   string // in the check's message
	}{
		{name: "works", body: qemuKVMWorks, accel: "kvm", reason: "KVM (a probe guest ran under it in"},
		{name: "no device", body: qemuKVMWorks, noDevice: true, accel: "tcg", reason: "KVM unusable: no "},
		{name: "aborts", body: qemuAborts, accel: "tcg", reason: "KVM unusable: QEMU aborted: failed to set MSR 0x10a to 0x69"},
		{name: "hangs", body: qemuHangs, accel: "tcg", reason: "KVM unusable: KVM probe timed out after 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog, runs, pidFile := standIn(t, tc.body)
			dev := kvmDevice(t)
			if tc.noDevice {
				dev = filepath.Join(t.TempDir(), "kvm")
			}
			began := time.Now()
			d := newAccelDriver(t, qemu.Config{QEMU: prog, KVMDevice: dev, ProbeTimeout: 300 * time.Millisecond})
			if took := time.Since(began); took > 10*time.Second {
				t.Errorf("New took %s: the probe is not bounded", took)
			}
			if got := d.Accel(); got != tc.accel {
				t.Errorf("Accel() = %q, want %q (%s)", got, tc.accel, d.AccelReason())
			}
			c := qemuCheck(t, d)
			if !c.Ready || !strings.Contains(c.Message, tc.reason) {
				t.Errorf("qemu check = ready %t %q, want ready with %q", c.Ready, c.Message, tc.reason)
			}
			wantRuns := 1
			if tc.noDevice {
				wantRuns = 0 // nothing to boot without a device
			}
			if n := runCount(t, runs); n != wantRuns {
				t.Errorf("the stand-in ran %d times, want %d", n, wantRuns)
			}
			if data, err := os.ReadFile(pidFile); err == nil {
				pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
				if pid > 0 && syscall.Kill(pid, 0) == nil {
					t.Errorf("the probe's QEMU (pid %d) still runs", pid)
				}
			}
		})
	}
}

// With --vm-accel kvm on a host whose KVM does not work the check fails with the
// probe's reason and VMs are refused with it.
func TestAccelKVMDemanded(t *testing.T) {
	for _, tc := range []struct{ name, body, reason string }{
		{"aborts", qemuAborts, "KVM unusable: QEMU aborted: failed to set MSR 0x10a"},
		{"hangs", qemuHangs, "KVM unusable: KVM probe timed out after 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog, _, _ := standIn(t, tc.body)
			d := newAccelDriver(t, qemu.Config{QEMU: prog, KVMDevice: kvmDevice(t), Accel: qemu.AccelKVM, ProbeTimeout: 300 * time.Millisecond})
			c := qemuCheck(t, d)
			if c.Ready || !strings.Contains(c.Message, tc.reason) {
				t.Errorf("qemu check = ready %t %q, want not ready with %q", c.Ready, c.Message, tc.reason)
			}
			if d.Accel() != "" {
				t.Errorf("Accel() = %q, want none", d.Accel())
			}
			_, err := d.Start(t.Context(), runtime.InstanceSpec{ID: "refused-0", Workload: "refused", Tier: v1alpha1.TierVM,
				VM: &v1alpha1.VMSource{Kernel: "/nonexistent/vmlinuz"}})
			if !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Start = %v, want ErrUnsupported naming %q", err, tc.reason)
			}
		})
	}
}

// --vm-accel tcg does not probe; a second driver with the same cache file takes the
// first one's probe from it, and nothing of the probe is left in the state directory.
func TestAccelProbeCache(t *testing.T) {
	prog, runs, _ := standIn(t, qemuAborts)
	dev, cache := kvmDevice(t), filepath.Join(t.TempDir(), "run", "vm-accel.json")
	newAccelDriver(t, qemu.Config{QEMU: prog, KVMDevice: dev, Accel: qemu.AccelTCG, ProbeCache: cache})
	if n := runCount(t, runs); n != 0 {
		t.Fatalf("--vm-accel tcg probed (%d runs)", n)
	}
	first := newAccelDriver(t, qemu.Config{QEMU: prog, KVMDevice: dev, ProbeCache: cache})
	second := newAccelDriver(t, qemu.Config{QEMU: prog, KVMDevice: dev, ProbeCache: cache})
	if n := runCount(t, runs); n != 1 {
		t.Errorf("two drivers probed %d times, want once", n)
	}
	if first.AccelReason() != second.AccelReason() || second.Accel() != "tcg" {
		t.Errorf("the cached outcome differs: %q / %q (%s)", first.AccelReason(), second.AccelReason(), second.Accel())
	}
	// A different QEMU program is probed anew.
	other, otherRuns, _ := standIn(t, qemuKVMWorks)
	if d := newAccelDriver(t, qemu.Config{QEMU: other, KVMDevice: dev, ProbeCache: cache}); d.Accel() != "kvm" || runCount(t, otherRuns) != 1 {
		t.Errorf("another QEMU: accel %q after %d probes, want kvm after 1", d.Accel(), runCount(t, otherRuns))
	}
}

// TestGuestCheckNamesKernel: the guest check says which kernel VMs boot:
// strata's own (built without modules) or one with modules.
func TestGuestCheckNamesKernel(t *testing.T) {
	prog, _, _ := standIn(t, qemuAborts)
	init := filepath.Join(t.TempDir(), "strata-guest")
	if err := os.WriteFile(init, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	strata := t.TempDir()
	write := func(p, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(strata, "boot", "vmlinuz-6.1.192-strata"), "bzImage")
	write(filepath.Join(strata, "boot", "config-6.1.192-strata"), "#\n# Linux/x86 6.1.192 Kernel Configuration\n#\nCONFIG_64BIT=y\n# CONFIG_MODULES is not set\nCONFIG_VIRTIO_BLK=y\n")
	cloud := t.TempDir()
	write(filepath.Join(cloud, "boot", "vmlinuz-6.1.0-57-cloud-amd64"), "bzImage")
	if err := os.MkdirAll(filepath.Join(cloud, "lib", "modules", "6.1.0-57-cloud-amd64"), 0o755); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]string{
		strata: "kernel 6.1.192-strata (strata's own, everything built in",
		cloud:  "kernel 6.1.0-57-cloud-amd64 (with modules",
	} {
		d := newAccelDriver(t, qemu.Config{QEMU: prog, KVMDevice: filepath.Join(t.TempDir(), "kvm"), KernelDir: dir, GuestInit: init})
		var g runtime.Check
		for _, c := range d.Probe(t.Context()) {
			if c.Name == "guest" {
				g = c
			}
		}
		if !g.Ready || !strings.Contains(g.Message, want) {
			t.Errorf("guest check with %s = ready %t %q, want ready with %q", dir, g.Ready, g.Message, want)
		}
	}
}

// A guest under TCG gets TCGSlowdown times as long as one under KVM to
// answer, and both get longer on a host busier than its CPUs: the deadline
// follows the accelerator the driver chose and the host's load.
func TestReadyTimeout(t *testing.T) {
	prog, _, _ := standIn(t, qemuKVMWorks)
	dev := kvmDevice(t)
	kvm := newAccelDriver(t, qemu.Config{QEMU: prog, KVMDevice: dev, ProbeTimeout: 300 * time.Millisecond})
	tcg := newAccelDriver(t, qemu.Config{QEMU: prog, KVMDevice: dev, Accel: qemu.AccelTCG})
	if kvm.Accel() != "kvm" || tcg.Accel() != "tcg" {
		t.Fatalf("accelerators %q and %q, want kvm and tcg", kvm.Accel(), tcg.Accel())
	}
	base := guest.DefaultHandshakeTimeout
	if got := kvm.ReadyTimeout(); got < base || got > qemu.MaxLoadFactor*base {
		t.Errorf("under KVM: ReadyTimeout() = %v, want %v to %v", got, base, qemu.MaxLoadFactor*base)
	}
	if got := tcg.ReadyTimeout(); got < qemu.TCGSlowdown*base || got > qemu.MaxLoadFactor*qemu.TCGSlowdown*base {
		t.Errorf("under TCG: ReadyTimeout() = %v, want %v to %v", got, qemu.TCGSlowdown*base, qemu.MaxLoadFactor*qemu.TCGSlowdown*base)
	}
	for _, tc := range []struct {
		accel string
		load  float64
		want  time.Duration
	}{
		{"kvm", 0.2, 30 * time.Second},
		{"tcg", 0.2, 2 * time.Minute},
		{"tcg", 1, 2 * time.Minute},
		{"tcg", 2.5, 5 * time.Minute},
		{"tcg", 11.5, 8 * time.Minute},
		{"kvm", 3, 90 * time.Second},
	} {
		if got := qemu.ReadyTimeoutFor(tc.accel, tc.load); got != tc.want {
			t.Errorf("ReadyTimeout under %s with a load of %v per CPU = %v, want %v", tc.accel, tc.load, got, tc.want)
		}
	}
	for text, want := range map[string]float64{
		"23.47 18.40 13.14 9/812 31337\n": 23.47 / 2,
		"0.50 0.40 0.30 1/100 7\n":        0.25,
		"":                                1,
		"x 1 1":                           1,
		"-3 1 1":                          1,
	} {
		if got := qemu.LoadPerCPU(text, 2); got != want {
			t.Errorf("load per CPU of %q on 2 CPUs = %v, want %v", text, got, want)
		}
	}
}
