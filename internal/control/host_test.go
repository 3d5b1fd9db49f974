package control

import (
	"context"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/fake"
)

// hostObject reads the Host object name from the env's store.
func (e *env) hostObject(name string) *v1alpha1.HostStatus {
	e.t.Helper()
	rec, err := e.st.Get(context.Background(), v1alpha1.KindHost, name)
	if err != nil {
		e.t.Fatal(err)
	}
	h, err := objects.Host(rec)
	if err != nil || h.Status == nil {
		e.t.Fatalf("host %s: %v, status %v", name, err, h)
	}
	return h.Status
}

// TestHostReporter: a heartbeat writes the Host object (created, then updated) with the
// running instances' allocation and the drivers' checks; a tier without a driver is listed
// without making the host unready, and a failing driver check does.
func TestHostReporter(t *testing.T) {
	e := newEnv(t)
	e.apply(workload("web", "2", []string{"serve"}, "Always"), v1alpha1.TierContainer)
	e.reconcile("web")
	osRelease := filepath.Join(t.TempDir(), "os-release")
	if err := os.WriteFile(osRelease, []byte("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := fake.New(fake.Options{Host: e.host, Name: "simulated", Tiers: []v1alpha1.Tier{v1alpha1.TierContainer}, Images: []string{image}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := runtime.NewRegistry(d)
	if err != nil {
		t.Fatal(err)
	}
	missing := []v1alpha1.DriverStatus{{Name: "qemu", Tiers: []v1alpha1.Tier{v1alpha1.TierVM}, Message: "the vm tier is unavailable: no KVM"}}
	h := NewHostReporter(HostOptions{Store: e.st, Drivers: reg, Missing: missing, Accel: "tcg", Clock: e.clock.Now,
		Name: "node-1", OSRelease: osRelease})

	if err := h.beat(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := e.hostObject("node-1")
	if !st.Ready || st.Instances != 2 || st.HeartbeatSeconds != 10 || st.Accelerator != "tcg" || st.OS != "Debian GNU/Linux 12 (bookworm)" ||
		!st.LastHeartbeatTime.Equal(e.clock.Now()) {
		t.Errorf("host status %+v: want ready, 2 instances, 10 s heartbeat, tcg, Debian, the clock's time", st)
	}
	if m := MachineCapacity(); st.Capacity.CPU.Value() != int64(goruntime.NumCPU()) || st.Capacity.Memory.Value() != m.MemoryBytes || m.MemoryBytes < 64<<20 {
		t.Errorf("capacity %s cpu, %s memory: want this machine's %d CPUs and %d bytes", st.Capacity.CPU.String(), st.Capacity.Memory.String(), goruntime.NumCPU(), m.MemoryBytes)
	}
	// Two running instances of the defaulted 100m and 128Mi each.
	if st.Allocated.CPU.MilliValue() != 200 || st.Allocated.Memory.Value() != 256<<20 {
		t.Errorf("allocated %s cpu, %s memory: want 200m, 256Mi", st.Allocated.CPU.String(), st.Allocated.Memory.String())
	}
	if len(st.Drivers) != 2 || st.Drivers[0].Name != "simulated" || !st.Drivers[0].Ready || st.Drivers[1].Name != "qemu" || st.Drivers[1].Ready {
		t.Errorf("driver checks %+v: want simulated ready, then qemu missing", st.Drivers)
	}
	if got := h.LastChecks(); len(got) != 2 {
		t.Errorf("last checks %+v, want the heartbeat's two", got)
	}
	ready := map[string]bool{}
	for _, c := range h.Ready(context.Background()) {
		ready[c.Name] = c.OK
	}
	if len(ready) != 3 || !ready["store"] || !ready["simulated"] || !ready["qemu"] {
		t.Errorf("readiness %v: want store, simulated and the missing qemu all passing", ready)
	}

	// The next heartbeat updates the object: a failing check makes the host unready.
	e.host.SetUnready("simulated", "runc is gone")
	e.clock.Advance(HeartbeatInterval)
	if err := h.beat(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = e.hostObject("node-1")
	if st.Ready || !st.LastHeartbeatTime.Equal(e.clock.Now()) || st.Drivers[0].Message != "runc is gone" {
		t.Errorf("host status %+v: want unready at the new heartbeat, with the check's message", st)
	}
	for _, c := range h.Ready(context.Background()) {
		if c.Name == "simulated" && (c.OK || c.Message != "runc is gone") {
			t.Errorf("readiness of simulated %+v: want failing with the check's message", c)
		}
	}
}

func TestPrettyOSName(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, content, want string }{
		{"double quotes", "ID=debian\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n", "Debian GNU/Linux 12 (bookworm)"},
		{"bare", "PRETTY_NAME=Alpine\n", "Alpine"},
		{"single quotes", "PRETTY_NAME='Arch Linux'\n", "Arch Linux"},
		{"indented, last line without a newline", "NAME=x\n  PRETTY_NAME=\"Fedora 41\"", "Fedora 41"},
		{"none", "NAME=x\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := prettyOSName(path); got != tc.want {
				t.Errorf("prettyOSName(%q) = %q, want %q", tc.content, got, tc.want)
			}
		})
	}
	if got := prettyOSName(filepath.Join(dir, "absent")); got != "" {
		t.Errorf("prettyOSName of a missing file = %q, want empty", got)
	}
}
