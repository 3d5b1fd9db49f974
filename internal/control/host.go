package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/store"
	"strata.dev/strata/internal/version"
)

// HeartbeatInterval is how often the host reporter rewrites the Host object.
const HeartbeatInterval = 10 * time.Second

// checksTimeout bounds one round of driver checks.
const checksTimeout = 5 * time.Second

// HostOptions configure the host reporter.
type HostOptions struct {
	Store   *store.Store
	Drivers *runtime.Registry
	// Missing are the tiers whose driver could not start, with why: listed among the
	// checks, but they do not make the host unready (it was never going to serve them).
	Missing []v1alpha1.DriverStatus
	// Accel is the VM tier's accelerator (kvm or tcg); empty without a VM tier.
	Accel  string
	Logger *slog.Logger
	Clock  func() time.Time
	// Name is the Host object's name; default: the machine's host name in lower case
	// ("localhost" when it has none).
	Name string
	// OSRelease is the os-release file the OS name is read from; default /etc/os-release.
	OSRelease string
}

// HostReporter keeps the Host object of this machine current: at every heartbeat it
// runs the drivers' checks, sums what the running instances were given, and writes the
// result to the store, where `strata get hosts`, the dashboard and watchers see it.
type HostReporter struct {
	store   *store.Store
	drivers *runtime.Registry
	// missing are the tiers whose driver could not start, with why.
	missing   []v1alpha1.DriverStatus
	accel     string
	name      string
	osRelease string
	interval  time.Duration
	clock     func() time.Time
	log       *slog.Logger

	mu   sync.Mutex
	last []v1alpha1.DriverStatus // the checks of the last heartbeat
}

// NewHostReporter returns the host reporter of o.
func NewHostReporter(o HostOptions) *HostReporter {
	if o.Name == "" {
		o.Name = DefaultHostName()
	}
	if o.OSRelease == "" {
		o.OSRelease = "/etc/os-release"
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &HostReporter{store: o.Store, drivers: o.Drivers, missing: o.Missing, accel: o.Accel, name: o.Name,
		osRelease: o.OSRelease, interval: HeartbeatInterval, clock: o.Clock, log: o.Logger}
}

// DefaultHostName is the Host object's name by default: the machine's host name in lower
// case, "localhost" when it has none.
func DefaultHostName() string {
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "localhost"
	}
	return strings.ToLower(name)
}

// Run writes the Host object now and at every heartbeat until ctx ends.
func (h *HostReporter) Run(ctx context.Context) error {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		if err := h.beat(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("heartbeat not recorded", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// beat writes one heartbeat.
func (h *HostReporter) beat(ctx context.Context) error {
	st, err := h.status(ctx)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.last = st.Drivers
	h.mu.Unlock()
	rec, err := objects.Record(v1alpha1.KindHost, v1alpha1.ObjectMeta{Name: h.name}, struct{}{}, st)
	if err != nil {
		return err
	}
	cur, err := h.store.Get(ctx, v1alpha1.KindHost, h.name)
	if errors.Is(err, store.ErrNotFound) {
		_, err = h.store.Create(ctx, rec)
		return err
	}
	if err != nil {
		return err
	}
	rec.ResourceVersion = cur.ResourceVersion
	_, err = h.store.UpdateStatus(ctx, rec)
	return err
}

// LastChecks returns the driver checks of the last heartbeat.
func (h *HostReporter) LastChecks() []v1alpha1.DriverStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// checks runs every driver's checks and adds the tiers that have no driver.
func (h *HostReporter) checks(ctx context.Context) []v1alpha1.DriverStatus {
	ctx, cancel := context.WithTimeout(ctx, checksTimeout)
	defer cancel()
	var out []v1alpha1.DriverStatus
	for _, d := range h.drivers.Drivers() {
		p, ok := d.(runtime.Prober)
		if !ok {
			out = append(out, v1alpha1.DriverStatus{Name: d.Name(), Tiers: d.Capabilities().Tiers, Ready: true, Message: "no checks"})
			continue
		}
		for _, c := range p.Probe(ctx) {
			out = append(out, v1alpha1.DriverStatus{Name: c.Name, Tiers: c.Tiers, Ready: c.Ready, Message: c.Message})
		}
	}
	return append(out, h.missing...)
}

// ReadyCheck is one check of Ready: what was checked, whether it passed, and what it
// found.
type ReadyCheck struct {
	Name    string
	OK      bool
	Message string
}

// Ready is what /readyz reports: the store answers and every configured driver passes
// its checks. A tier without a driver is listed but does not make the daemon unready: it
// was never going to serve it.
func (h *HostReporter) Ready(ctx context.Context) []ReadyCheck {
	var out []ReadyCheck
	if _, _, err := h.store.List(ctx, v1alpha1.KindHost); err != nil {
		out = append(out, ReadyCheck{Name: "store", Message: err.Error()})
	} else {
		out = append(out, ReadyCheck{Name: "store", OK: true, Message: "readable"})
	}
	for _, c := range h.checks(ctx) {
		ok := c.Ready
		if h.isMissing(c.Name) {
			ok = true
		}
		out = append(out, ReadyCheck{Name: c.Name, OK: ok, Message: c.Message})
	}
	return out
}

func (h *HostReporter) isMissing(name string) bool {
	for _, m := range h.missing {
		if m.Name == name {
			return true
		}
	}
	return false
}

// status gathers the Host's status.
func (h *HostReporter) status(ctx context.Context) (*v1alpha1.HostStatus, error) {
	st := &v1alpha1.HostStatus{
		LastHeartbeatTime: h.clock().UTC().Truncate(time.Second), HeartbeatSeconds: int32(h.interval / time.Second),
		Version: version.Version, Arch: goruntime.GOARCH, Accelerator: h.accel, Tiers: h.drivers.Tiers(),
		Drivers: h.checks(ctx),
	}
	st.Ready = true
	for _, c := range st.Drivers {
		if !c.Ready && !h.isMissing(c.Name) {
			st.Ready = false
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		st.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	st.OS = prettyOSName(h.osRelease)
	machine := MachineCapacity()
	st.Capacity.CPU = *resource.NewQuantity(machine.CPUMilli/1000, resource.DecimalSI)
	if machine.MemoryBytes > 0 {
		st.Capacity.Memory = *resource.NewQuantity(machine.MemoryBytes, resource.BinarySI)
	}
	recs, _, err := h.store.List(ctx, v1alpha1.KindWorkload)
	if err != nil {
		return nil, fmt.Errorf("list workloads: %w", err)
	}
	var cpuMilli, mem int64
	for _, rec := range recs {
		w, err := objects.Workload(rec)
		if err != nil || w.Status == nil {
			continue
		}
		for _, in := range w.Status.Instances {
			if in.State != string(runtime.StateRunning) {
				continue
			}
			st.Instances++
			cpuMilli += w.Spec.Resources.CPU.MilliValue()
			mem += w.Spec.Resources.Memory.Value()
		}
	}
	st.Allocated.CPU = *resource.NewMilliQuantity(cpuMilli, resource.DecimalSI)
	st.Allocated.Memory = *resource.NewQuantity(mem, resource.BinarySI)
	return st, nil
}

// MachineCapacity is what this machine has: every CPU and all memory (MemoryBytes 0
// when the kernel does not say).
func MachineCapacity() HostCapacity {
	c := HostCapacity{CPUMilli: int64(goruntime.NumCPU()) * 1000}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		c.MemoryBytes = int64(si.Totalram) * int64(si.Unit)
	}
	return c
}

// prettyOSName reads PRETTY_NAME from an os-release file; "" when it cannot.
func prettyOSName(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "PRETTY_NAME="); ok {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}
