package daemon

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
	"strata.dev/strata/internal/server"
	"strata.dev/strata/internal/store"
	"strata.dev/strata/internal/version"
)

// HeartbeatInterval is how often the daemon rewrites its Host object.
const HeartbeatInterval = 10 * time.Second

// probeTimeout bounds one round of driver checks.
const probeTimeout = 5 * time.Second

// hostReporter keeps the Host object of this machine current: at every heartbeat it
// runs the drivers' checks, sums what the running instances were given, and writes the
// result to the store, where `strata get hosts`, the dashboard and watchers see it.
type hostReporter struct {
	store   *store.Store
	drivers *runtime.Registry
	// missing are the tiers whose driver could not start, with why.
	missing  []v1alpha1.DriverStatus
	accel    string
	name     string
	interval time.Duration
	log      *slog.Logger

	mu   sync.Mutex
	last []v1alpha1.DriverStatus // the checks of the last heartbeat
}

func newHostReporter(st *store.Store, drivers *runtime.Registry, missing []v1alpha1.DriverStatus, accel string, log *slog.Logger) *hostReporter {
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "localhost"
	}
	return &hostReporter{store: st, drivers: drivers, missing: missing, accel: accel, name: strings.ToLower(name),
		interval: HeartbeatInterval, log: log}
}

// run writes the Host object now and at every heartbeat until ctx ends.
func (h *hostReporter) run(ctx context.Context) error {
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
func (h *hostReporter) beat(ctx context.Context) error {
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

// lastChecks returns the driver checks of the last heartbeat.
func (h *hostReporter) lastChecks() []v1alpha1.DriverStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// checks runs every driver's checks and adds the tiers that have no driver.
func (h *hostReporter) checks(ctx context.Context) []v1alpha1.DriverStatus {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
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

// ready is /readyz: the store answers and every configured driver passes its checks.
// A tier without a driver is listed but does not make the daemon unready: it was
// never going to serve it.
func (h *hostReporter) ready(ctx context.Context) []server.Check {
	var out []server.Check
	if _, _, err := h.store.List(ctx, v1alpha1.KindHost); err != nil {
		out = append(out, server.Check{Name: "store", Message: err.Error()})
	} else {
		out = append(out, server.Check{Name: "store", OK: true, Message: "readable"})
	}
	for _, c := range h.checks(ctx) {
		ok := c.Ready
		if h.isMissing(c.Name) {
			ok = true
		}
		out = append(out, server.Check{Name: c.Name, OK: ok, Message: c.Message})
	}
	return out
}

func (h *hostReporter) isMissing(name string) bool {
	for _, m := range h.missing {
		if m.Name == name {
			return true
		}
	}
	return false
}

// status gathers the Host's status.
func (h *hostReporter) status(ctx context.Context) (*v1alpha1.HostStatus, error) {
	st := &v1alpha1.HostStatus{
		LastHeartbeatTime: time.Now().UTC().Truncate(time.Second), HeartbeatSeconds: int32(h.interval / time.Second),
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
	st.OS = prettyOSName("/etc/os-release")
	st.Capacity.CPU = *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI)
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		st.Capacity.Memory = *resource.NewQuantity(int64(si.Totalram)*int64(si.Unit), resource.BinarySI)
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
