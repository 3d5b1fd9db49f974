// Package kvmprobe finds out whether KVM runs guests on this host, by running one.
//
// A /dev/kvm that opens is no proof: some hosts have one while their CPU cannot run a
// guest (QEMU aborts setting MSRs, or the guest hangs). The probe boots a 64 KiB
// firmware whose reset vector writes a value to QEMU's isa-debug-exit port, which makes
// QEMU exit with a known status; any other end, or none within the timeout, says why
// KVM cannot be used. The same firmware runs under TCG, so a probe that fails under KVM
// fails because of KVM.
package kvmprobe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultDevice is the KVM device; DefaultTimeout bounds a probe.
const (
	DefaultDevice  = "/dev/kvm"
	DefaultTimeout = 5 * time.Second
)

// The firmware writes exitValue to QEMU's isa-debug-exit port, which makes QEMU exit
// with status exitValue<<1 | 1.
const (
	exitPort  = 0xf4
	exitValue = 0x2a
	exitCode  = exitValue<<1 | 1
)

// Config says how to probe.
type Config struct {
	// QEMU is the program to run (a path).
	QEMU string
	// Device is the KVM device (default DefaultDevice).
	Device string
	// Timeout bounds the probe guest's run (default DefaultTimeout).
	Timeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Device == "" {
		c.Device = DefaultDevice
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// KVM boots a guest of a few instructions under KVM with the CPU model strata's VMs
// use (-cpu host) and returns how long it took, or why KVM cannot run guests here:
// "no /dev/kvm", "QEMU aborted: failed to set MSR 0x10a to 0x69", "KVM probe timed
// out after 5s".
func KVM(ctx context.Context, c Config) (time.Duration, error) {
	c = c.withDefaults()
	f, err := os.OpenFile(c.Device, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("no %s", c.Device)
	}
	if err != nil {
		return 0, fmt.Errorf("cannot open %s: %w", c.Device, errors.Unwrap(err))
	}
	_ = f.Close()
	return Run(ctx, c, "kvm", "host")
}

// Run boots the probe firmware under accel (kvm or tcg) with CPU model cpu and returns
// how long it took, or why it did not run.
func Run(ctx context.Context, c Config, accel, cpu string) (time.Duration, error) {
	c = c.withDefaults()
	dir, err := os.MkdirTemp("", "strata-accel-probe-")
	if err != nil {
		return 0, fmt.Errorf("probe: %w", err)
	}
	defer os.RemoveAll(dir)
	fw := filepath.Join(dir, "probe.bin")
	if err := os.WriteFile(fw, Firmware(), 0o600); err != nil {
		return 0, fmt.Errorf("probe: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	//nolint:gosec // G204: the configured QEMU, with the probe's own arguments
	cmd := exec.CommandContext(pctx, c.QEMU,
		"-machine", "pc", "-accel", accel, "-cpu", cpu, "-m", "16",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-bios", fw, "-device", fmt.Sprintf("isa-debug-exit,iobase=%#x,iosize=4", exitPort))
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
		return 0, fmt.Errorf("%s probe timed out after %s", strings.ToUpper(accel), c.Timeout)
	case ctx.Err() != nil:
		return 0, ctx.Err()
	case errors.As(err, &exit) && exit.ExitCode() == exitCode:
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

// Firmware is a 64 KiB PC firmware image whose reset vector writes
// exitValue to the isa-debug-exit port and halts: the least a guest can do
// to show that the accelerator ran its code.
func Firmware() []byte {
	fw := bytes.Repeat([]byte{0xf4}, 64<<10) // hlt everywhere
	code := []byte{
		0xb0, exitValue, // mov al, exitValue
		0xe6, exitPort, // out exitPort, al
		0xf4,       // hlt
		0xeb, 0xfd, // jmp to the hlt
	}
	copy(fw[len(fw)-16:], code) // the reset vector: 16 bytes below the end
	return fw
}
