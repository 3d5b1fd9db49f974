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
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/runtime/qemu/kvmprobe"
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
const DefaultKVMDevice = kvmprobe.DefaultDevice

// DefaultProbeTimeout bounds the KVM probe.
const DefaultProbeTimeout = kvmprobe.DefaultTimeout

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
// are the same, else probes and records the outcome (in Config.ProbeCache, when set).
func (d *Driver) probeKVMCached(ctx context.Context) (time.Duration, error) {
	key, path := "", d.cfg.ProbeCache
	if path != "" {
		key = d.probeKey()
	}
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
	took, err := kvmprobe.KVM(ctx, kvmprobe.Config{QEMU: d.cfg.QEMU, Device: d.cfg.KVMDevice, Timeout: d.cfg.ProbeTimeout})
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

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
