package qemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Accelerator modes of Config.Accel.
const (
	// AccelAuto uses KVM when a probe guest boots under it, TCG otherwise.
	AccelAuto = "auto"
	// AccelKVM insists on KVM: when the probe fails the driver refuses VMs.
	AccelKVM = accelKVM
	// AccelTCG uses software emulation without probing.
	AccelTCG = accelTCG
)

// DefaultKVMDevice is the device the probe opens before booting under KVM.
const DefaultKVMDevice = "/dev/kvm"

// DefaultProbeTimeout bounds the KVM probe.
const DefaultProbeTimeout = 5 * time.Second

// probeFile caches the probe's outcome for one boot of the host.
const probeFile = "accel-probe.json"

// The probe firmware writes probeExitValue to QEMU's isa-debug-exit port,
// which makes QEMU exit with status probeExitValue<<1 | 1.
const (
	probeExitPort  = 0xf4
	probeExitValue = 0x2a
	probeExitCode  = probeExitValue<<1 | 1
)

// accelChoice is the driver's accelerator and why it was chosen.
type accelChoice struct {
	// Accel is accelKVM or accelTCG.
	Accel string `json:"accel"`
	// Reason says why, for the driver check and the log: "KVM works (probe guest ran in
	// 40 ms)", "KVM unusable: no /dev/kvm", "forced by --vm-accel tcg".
	Reason string `json:"reason"`
	// Refused is set when KVM was demanded and does not work: VMs are refused with
	// this text.
	Refused string `json:"refused,omitempty"`
}

// probeRecord is the cached outcome of a probe, valid while Key matches.
type probeRecord struct {
	Key    string `json:"key"`
	Err    string `json:"err,omitempty"` // "" when KVM worked
	Took   string `json:"took,omitempty"`
	Probed string `json:"probed"` // RFC 3339
}

// chooseAccel settles the accelerator for mode (AccelAuto, AccelKVM or AccelTCG).
func (d *Driver) chooseAccel(ctx context.Context, mode string) accelChoice {
	if mode == AccelTCG {
		return accelChoice{Accel: accelTCG, Reason: "TCG (software emulation) as configured (--vm-accel tcg)"}
	}
	took, err := d.probeKVMCached(ctx)
	switch {
	case err == nil:
		return accelChoice{Accel: accelKVM, Reason: fmt.Sprintf("KVM (a probe guest ran under it in %s)", took)}
	case mode == AccelKVM:
		msg := "KVM unusable: " + err.Error()
		return accelChoice{Accel: accelKVM, Reason: msg + " (--vm-accel kvm: VMs are refused)", Refused: msg}
	default:
		return accelChoice{Accel: accelTCG, Reason: "TCG (software emulation): KVM unusable: " + err.Error()}
	}
}

// probeKVMCached returns the outcome of this boot's probe when the kernel, QEMU and CPU
// are the same, else probes and records the outcome.
func (d *Driver) probeKVMCached(ctx context.Context) (time.Duration, error) {
	key := d.probeKey()
	path := filepath.Join(d.cfg.StateDir, probeFile)
	if key != "" {
		var rec probeRecord
		if data, err := os.ReadFile(path); err == nil && json.Unmarshal(data, &rec) == nil && rec.Key == key {
			took, _ := time.ParseDuration(rec.Took)
			if rec.Err != "" {
				return 0, errors.New(rec.Err)
			}
			return took, nil
		}
	}
	took, err := d.probeKVM(ctx)
	if key == "" || ctx.Err() != nil {
		return took, err // an interrupted probe says nothing about the host
	}
	rec := probeRecord{Key: key, Took: took.String(), Probed: time.Now().UTC().Format(time.RFC3339)}
	if err != nil {
		rec.Err = err.Error()
	}
	if data, merr := json.Marshal(rec); merr == nil {
		if werr := writeFileAtomic(path, data); werr != nil {
			d.log.Warn("qemu driver: cache the KVM probe", "err", werr)
		}
	}
	return took, err
}

// probeKey identifies what the probe's outcome depends on: this boot of the host (its
// boot ID and kernel), the QEMU program and the CPU. "" when it cannot be told.
func (d *Driver) probeKey() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return ""
	}
	fi, err := os.Stat(d.cfg.QEMU)
	if err != nil {
		return ""
	}
	cpu, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s %d %d\n%s\n", bytes.TrimSpace(boot), unix.ByteSliceToString(uts.Release[:]),
		d.cfg.QEMU, fi.Size(), fi.ModTime().UnixNano(), d.cfg.KVMDevice)
	h.Write(cpuIdentity(cpu))
	return hex.EncodeToString(h.Sum(nil))
}

// cpuIdentity is the first processor's model and flags in /proc/cpuinfo.
func cpuIdentity(cpuinfo []byte) []byte {
	var out []byte
	for line := range bytes.Lines(cpuinfo) {
		if len(bytes.TrimSpace(line)) == 0 {
			break // the end of the first processor
		}
		k, _, _ := bytes.Cut(line, []byte(":"))
		switch string(bytes.TrimSpace(k)) {
		case "vendor_id", "model name", "flags":
			out = append(out, line...)
		}
	}
	return out
}

// probeKVM boots a guest of a few instructions under KVM with the CPU model VMs use
// (-cpu host) and returns how long it took, or why KVM cannot run guests here.
func (d *Driver) probeKVM(ctx context.Context) (time.Duration, error) {
	f, err := os.OpenFile(d.cfg.KVMDevice, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("no %s", d.cfg.KVMDevice)
	}
	if err != nil {
		return 0, fmt.Errorf("cannot open %s: %w", d.cfg.KVMDevice, errors.Unwrap(err))
	}
	_ = f.Close()
	return d.runProbeGuest(ctx, accelKVM, "host")
}

// runProbeGuest boots the probe firmware under accel with CPU model cpu and returns
// how long it took, or why it did not run.
func (d *Driver) runProbeGuest(ctx context.Context, accel, cpu string) (time.Duration, error) {
	dir, err := os.MkdirTemp(d.cfg.StateDir, "accel-probe-")
	if err != nil {
		return 0, fmt.Errorf("probe: %w", err)
	}
	defer os.RemoveAll(dir)
	fw := filepath.Join(dir, "probe.bin")
	if err := os.WriteFile(fw, probeFirmware(), 0o600); err != nil {
		return 0, fmt.Errorf("probe: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, d.cfg.ProbeTimeout)
	defer cancel()
	cmd := exec.CommandContext(pctx, d.cfg.QEMU,
		"-machine", "pc", "-accel", accel, "-cpu", cpu, "-m", "16",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-bios", fw, "-device", fmt.Sprintf("isa-debug-exit,iobase=%#x,iosize=4", probeExitPort))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	began := time.Now()
	err = cmd.Run()
	took := time.Since(began).Round(time.Millisecond)
	var exit *exec.ExitError
	switch {
	case pctx.Err() != nil && ctx.Err() == nil:
		return 0, fmt.Errorf("%s probe timed out after %s", strings.ToUpper(accel), d.cfg.ProbeTimeout)
	case ctx.Err() != nil:
		return 0, ctx.Err()
	case errors.As(err, &exit) && exit.ExitCode() == probeExitCode:
		return took, nil
	case errors.As(err, &exit):
		ws, _ := exit.Sys().(syscall.WaitStatus)
		what := fmt.Sprintf("QEMU exited with status %d", exit.ExitCode())
		if ws.Signaled() && ws.Signal() == syscall.SIGABRT {
			what = "QEMU aborted"
		} else if ws.Signaled() {
			what = fmt.Sprintf("QEMU ended by signal %v", ws.Signal())
		}
		if line := firstError(stderr.String()); line != "" {
			what += ": " + line
		}
		return 0, errors.New(what)
	case err != nil:
		return 0, fmt.Errorf("probe: %w", err)
	default:
		return 0, errors.New("the probe guest did not run: QEMU exited with status 0 before it reported")
	}
}

// firstError is the first line of QEMU's output that reports an error, without
// the program name QEMU puts before it; else its first line.
func firstError(out string) string {
	var first string
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if i := strings.Index(line, ": "); i > 0 && !strings.Contains(line[:i], " ") {
			line = line[i+2:] // "qemu-system-x86_64: ..."
		}
		if rest, ok := strings.CutPrefix(line, "error: "); ok {
			return truncate(rest, 200)
		}
		if first == "" {
			first = line
		}
	}
	return truncate(first, 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// probeFirmware is a 64 KiB PC firmware image whose reset vector writes
// probeExitValue to the isa-debug-exit port and halts: the least a guest can do
// to show that the accelerator ran its code.
func probeFirmware() []byte {
	fw := bytes.Repeat([]byte{0xf4}, 64<<10) // hlt everywhere
	code := []byte{
		0xb0, probeExitValue, // mov al, probeExitValue
		0xe6, probeExitPort, // out probeExitPort, al
		0xf4,       // hlt
		0xeb, 0xfd, // jmp to the hlt
	}
	copy(fw[len(fw)-16:], code) // the reset vector: 16 bytes below the end
	return fw
}

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
