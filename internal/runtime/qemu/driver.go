package qemu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
)

// Name is the driver's name.
const Name = "qemu"

const (
	accelKVM = "kvm"
	accelTCG = "tcg"
)

// Config configures the driver.
type Config struct {
	// StateDir holds one directory per instance and the image disk cache.
	StateDir string
	// QEMU and QEMUImg are the programs to run (defaults: qemu-system-x86_64
	// and qemu-img on PATH).
	QEMU, QEMUImg string
	// KernelDir holds the guest kernel image VMs and node VMs boot; empty
	// means strata's own kernel (guest.StrataKernelDir) where it is built,
	// else Debian's cloud kernel (guest.DefaultKernelDir); see guest.LocateKernel.
	KernelDir string
	// GuestInit is strata's guest init program, strata-guest (default: next
	// to the running executable).
	GuestInit string
	// Images is where image VMs get their images from; nil: the driver boots
	// VM sources only.
	Images runtime.ImageSource
	// OpenTap opens the tap device of instance id for QEMU; required for
	// specs with VMNet.
	OpenTap func(id string) (*os.File, error)
	// Accel is how the accelerator is chosen: AccelAuto (or "") boots a probe
	// guest under KVM and uses KVM when it runs, TCG otherwise; AccelKVM
	// insists on KVM (VMs are refused, with the probe's reason, when it does
	// not work); AccelTCG uses software emulation without probing.
	Accel string
	// TCGCacheMiB is the size of TCG's translated-code cache per VM under
	// software emulation (default DefaultTCGCacheMiB): what it fills stays
	// resident; smaller caches are flushed more often.
	TCGCacheMiB int
	// KVMDevice is the KVM device the probe opens (default DefaultKVMDevice);
	// ProbeTimeout bounds the probe guest's run (default DefaultProbeTimeout).
	KVMDevice    string
	ProbeTimeout time.Duration
	// ProbeCache, when set, is a file that keeps the probe's outcome for this boot of
	// the host (keyed by the boot ID, kernel, QEMU program and CPU), so that a restarted
	// daemon does not probe again; the daemon keeps it in its run directory.
	ProbeCache string
	// OVMFCode and OVMFVars are the UEFI firmware VMs with vm.firmware uefi boot, and the
	// template of its variable store, of which each instance gets a copy (defaults:
	// DefaultOVMFCode and DefaultOVMFVars, from Debian's ovmf package).
	OVMFCode, OVMFVars string
	// BootTimeout bounds how long Start waits for QEMU's monitor to answer
	// (default 30 s).
	BootTimeout time.Duration
	// Virtiofsd is the virtiofs daemon AttachFS runs for a directory shared
	// into a node VM (default DefaultVirtiofsd, QEMU's own).
	Virtiofsd string
	Logger    *slog.Logger
}

// Driver runs VMs with QEMU.
type Driver struct {
	cfg    Config
	log    *slog.Logger
	accel  string
	choice accelChoice

	mu       sync.Mutex
	closed   bool
	reaped   map[string]syscall.WaitStatus // exit status of QEMU processes this value started
	children map[string]chan struct{}      // QEMU processes this value started, closed once reaped
	events   runtime.Broadcaster
	agents   map[string]*guest.AgentClient
	initrd   string // the base initramfs, built once
	stop     chan struct{}
	watched  sync.WaitGroup
}

// New returns a driver over cfg.StateDir, taking over the instances an
// earlier driver value left running there.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("qemu driver: no state directory")
	}
	if cfg.QEMU == "" {
		cfg.QEMU = "qemu-system-x86_64"
	}
	if cfg.QEMUImg == "" {
		cfg.QEMUImg = "qemu-img"
	}
	for _, p := range []*string{&cfg.QEMU, &cfg.QEMUImg} {
		full, err := exec.LookPath(*p)
		if err != nil {
			return nil, fmt.Errorf("qemu driver: %s not found (install qemu-system-x86 and qemu-utils: `make host-setup`): %w", *p, err)
		}
		*p = full
	}
	if cfg.TCGCacheMiB < 0 {
		return nil, fmt.Errorf("qemu driver: TCG cache of %d MiB: give a positive size, or 0 for the default (%d MiB)", cfg.TCGCacheMiB, DefaultTCGCacheMiB)
	}
	if cfg.TCGCacheMiB == 0 {
		cfg.TCGCacheMiB = DefaultTCGCacheMiB
	}
	if cfg.GuestInit == "" {
		if exe, err := os.Executable(); err == nil {
			cfg.GuestInit = filepath.Join(filepath.Dir(exe), "strata-guest")
		}
	}
	if cfg.OVMFCode == "" {
		cfg.OVMFCode = DefaultOVMFCode
	}
	if cfg.OVMFVars == "" {
		cfg.OVMFVars = DefaultOVMFVars
	}
	if cfg.BootTimeout <= 0 {
		cfg.BootTimeout = 30 * time.Second
	}
	if cfg.Virtiofsd == "" {
		cfg.Virtiofsd = DefaultVirtiofsd
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Accel == "" {
		cfg.Accel = AccelAuto
	}
	if cfg.Accel != AccelAuto && cfg.Accel != AccelKVM && cfg.Accel != AccelTCG {
		return nil, fmt.Errorf("qemu driver: accelerator %q: want auto, kvm or tcg", cfg.Accel)
	}
	if cfg.KVMDevice == "" {
		cfg.KVMDevice = DefaultKVMDevice
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = DefaultProbeTimeout
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("qemu driver: %w", err)
	}
	d := &Driver{
		cfg: cfg, log: cfg.Logger,
		reaped: map[string]syscall.WaitStatus{}, children: map[string]chan struct{}{},
		agents: map[string]*guest.AgentClient{}, stop: make(chan struct{}),
		events: runtime.Broadcaster{Name: "qemu", Log: cfg.Logger},
	}
	d.choice = d.chooseAccel(ctx, cfg.Accel)
	d.accel = d.choice.Accel
	if d.choice.Refused != "" {
		d.log.Error("vm accelerator", "accel", d.accel, "reason", d.choice.Reason)
	} else {
		d.log.Info("vm accelerator", "accel", d.accel, "reason", d.choice.Reason)
	}
	// Settle what ended while no driver watched.
	ids, err := d.ids()
	if err != nil {
		return nil, fmt.Errorf("qemu driver: %w", err)
	}
	for _, id := range ids {
		if _, err := d.Status(ctx, id); err != nil {
			d.log.Warn("qemu driver: instance record unreadable", "id", id, "err", err)
		}
	}
	d.watched.Add(1)
	go d.watch()
	return d, nil
}

// Name implements runtime.Driver.
func (d *Driver) Name() string { return Name }

// Accel reports the accelerator new instances use: "kvm" or "tcg"; "" when KVM was
// demanded and does not work, so that VMs are refused (see AccelReason).
func (d *Driver) Accel() string {
	if d.choice.Refused != "" {
		return ""
	}
	return d.accel
}

// TCGSlowdown is how many times longer than under KVM the driver waits for
// a guest under TCG. Every guest instruction is emulated there: a node VM
// boots to its agent in 5-9 s on an idle 2-core host, and in 25-35 s on the
// same host loaded with a test run of the whole repository (a load average
// of 18), close to the 30 s a guest under KVM gets.
const TCGSlowdown = 4

// MaxLoadFactor bounds how many times longer the driver waits for a guest
// on a host busier than its CPUs (ReadyTimeout).
const MaxLoadFactor = 4

// ReadyTimeout is how long a guest of this driver may take from QEMU's start
// until its agent answers: guest.DefaultHandshakeTimeout under KVM,
// TCGSlowdown times that under TCG, and either one longer by the host's
// load per CPU when that is above 1 (at most MaxLoadFactor times): a
// guest's virtual CPUs get their share of the host's CPUs with everything
// else that runs. The driver waits this long for an agent when the
// caller's context has no deadline, and callers that wait for a guest to
// boot (the nodevm driver, for its node VMs) use it too.
func (d *Driver) ReadyTimeout() time.Duration {
	return readyTimeout(d.accel, hostLoad())
}

func readyTimeout(accel string, loadPerCPU float64) time.Duration {
	t := guest.DefaultHandshakeTimeout
	if accel == accelTCG {
		t *= TCGSlowdown
	}
	return time.Duration(float64(t) * min(max(loadPerCPU, 1), MaxLoadFactor))
}

// hostLoad is the host's load average over the last minute per CPU; 1 when
// it cannot be read.
func hostLoad() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 1
	}
	return loadPerCPU(string(data), goruntime.NumCPU())
}

// loadPerCPU reads the one-minute load average from the text of
// /proc/loadavg and divides it by cpus; 1 when it is unreadable.
func loadPerCPU(loadavg string, cpus int) float64 {
	fields := strings.Fields(loadavg)
	if len(fields) == 0 || cpus < 1 {
		return 1
	}
	load, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || load < 0 {
		return 1
	}
	return load / float64(cpus)
}

// AccelReason says why the driver uses its accelerator, and with --vm-accel kvm on a
// host whose KVM does not work, that VMs are refused.
func (d *Driver) AccelReason() string { return d.choice.Reason }

// Capabilities implements runtime.Driver. Memory is the guest's size and
// CPUs its count, which bound the guest but are not reported as OOM kills
// (MemoryBound, not Limits); host directories cannot be mounted into a VM yet.
func (d *Driver) Capabilities() runtime.Capabilities {
	return runtime.Capabilities{Tiers: []v1alpha1.Tier{v1alpha1.TierVM}, HostPID: true, MemoryBound: true}
}

// Close implements runtime.Driver. VMs keep running.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	close(d.stop)
	d.events.Close()
	agents := d.agents
	d.agents = map[string]*guest.AgentClient{}
	d.mu.Unlock()
	for _, a := range agents {
		_ = a.Close()
	}
	d.watched.Wait()
	return nil
}

func (d *Driver) check() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("qemu driver: closed")
	}
	return nil
}

// lockID serialises operations on one instance within this process.
func (d *Driver) lockID(id string) func() {
	m, _ := instanceLocks.LoadOrStore(d.cfg.StateDir+"/"+id, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// instanceLocks is shared by every Driver value of the process, so that two
// values over one state directory (a test's re-adoption) do not interleave.
var instanceLocks sync.Map

// Status implements runtime.Driver.
func (d *Driver) Status(ctx context.Context, id string) (runtime.Status, error) {
	if err := d.check(); err != nil {
		return runtime.Status{}, err
	}
	if !runtime.ValidID(id) {
		return runtime.Status{}, fmt.Errorf("%w: instance %q", runtime.ErrNotFound, id)
	}
	unlock := d.lockID(id)
	defer unlock()
	r, err := d.readRecord(id)
	if err != nil {
		return runtime.Status{}, err
	}
	d.settle(r)
	return r.status(), nil
}

// settle records the exit of r's QEMU process when it has ended. The caller
// holds the instance's lock.
func (d *Driver) settle(r *record) bool {
	if r.Finished || r.PID == 0 || d.alive(r) {
		return false
	}
	d.mu.Lock()
	_, child := d.children[r.ID]
	d.mu.Unlock()
	if child {
		return false // reap records how it ended, in a moment
	}
	d.finish(r)
	return true
}

// finish completes r once its QEMU process has ended: the exit code comes from
// the guest's report, else from how QEMU ended.
func (d *Driver) finish(r *record) {
	d.mu.Lock()
	ws, reaped := d.reaped[r.ID]
	delete(d.reaped, r.ID)
	agent := d.agents[r.ID]
	delete(d.agents, r.ID)
	d.mu.Unlock()
	if agent != nil {
		_ = agent.Close()
	}
	code, msg := 0, ""
	report, rerr := readExitReport(d.path(r.ID, exitFile))
	switch {
	case (r.Source == sourceImage || r.Source == sourceNode) && rerr == nil:
		code, msg = report.ExitCode, report.Error
	case r.Killed:
		code, msg = 137, "killed after the stop grace period"
	case reaped && ws.Signaled():
		code, msg = 128+int(ws.Signal()), fmt.Sprintf("QEMU ended by signal %v", ws.Signal())
	case reaped && ws.Exited() && r.Source == sourceVM:
		code = ws.ExitStatus()
		if code != 0 {
			msg = "QEMU failed: " + tail(d.path(r.ID, qemuLog))
		}
	case reaped && ws.Exited():
		code, msg = 128+int(syscall.SIGKILL), fmt.Sprintf("QEMU exited with status %d and no report from the guest: %s", ws.ExitStatus(), tail(d.path(r.ID, qemuLog)))
	case r.Source == sourceImage || r.Source == sourceNode:
		code, msg = 128+int(syscall.SIGKILL), "QEMU ended without a report from the guest (killed, or crashed)"
	default:
		msg = "QEMU ended while no strata process watched it; its exit status is unknown"
	}
	r.Finished, r.Stopping, r.ExitCode, r.Message = true, false, code, msg
	r.PID, r.PIDStart = 0, 0
	if r.FinishedAt.IsZero() {
		r.FinishedAt = time.Now()
	}
	if err := d.writeRecord(r); err != nil {
		d.log.Warn("qemu driver: record the exit", "id", r.ID, "err", err)
	}
	// The monitor and agent sockets are QEMU's; a dead QEMU leaves them.
	for _, f := range []string{qmpSocket, agentSocket, conSocket} {
		_ = os.Remove(d.path(r.ID, f))
	}
	d.publish(runtime.Event{Type: runtime.EventExit, ID: r.ID, Time: r.FinishedAt, ExitCode: code})
}

// List implements runtime.Driver.
func (d *Driver) List(ctx context.Context) ([]runtime.Status, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	ids, err := d.ids()
	if err != nil {
		return nil, err
	}
	return runtime.StatusOf(ctx, ids, d.Status)
}

// Events implements runtime.EventSource.
func (d *Driver) Events(ctx context.Context) (<-chan runtime.Event, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.events.Subscribe(ctx)
}

func (d *Driver) publish(e runtime.Event) { d.events.Publish(e) }

// watch notices the end of QEMU processes this value did not start (it
// reaps its own children as they end).
func (d *Driver) watch() {
	defer d.watched.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		ids, err := d.ids()
		if err != nil {
			continue
		}
		for _, id := range ids {
			unlock := d.lockID(id)
			if r, err := d.readRecord(id); err == nil {
				d.settle(r)
			}
			unlock()
		}
	}
}
