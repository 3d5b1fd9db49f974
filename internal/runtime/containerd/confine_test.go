package containerd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/containerd/pkg/cap"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/containerd"
	"strata.dev/strata/internal/runtime/containerd/ctrdtest"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/testenv"
)

// procStatus is what a process's /proc/PID/status says of its confinement.
type procStatus struct {
	seccomp string   // "0" none, "1" strict, "2" filter
	capEff  []string // effective capabilities, "CAP_CHOWN", sorted
}

// parseStatus reads the Seccomp and CapEff lines of a /proc/PID/status.
func parseStatus(t *testing.T, status string) procStatus {
	t.Helper()
	var ps procStatus
	found := 0
	for line := range strings.Lines(status) {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch key {
		case "Seccomp":
			ps.seccomp = value
			found++
		case "CapEff":
			mask, err := strconv.ParseUint(value, 16, 64)
			if err != nil {
				t.Fatalf("CapEff %q: %v", value, err)
			}
			ps.capEff, _ = cap.FromBitmap(mask)
			slices.Sort(ps.capEff)
			found++
		}
	}
	if found != 2 {
		t.Fatalf("no Seccomp or CapEff line in:\n%s", status)
	}
	return ps
}

// startSleeper starts an instance that sleeps, removed when t ends.
func startSleeper(t *testing.T, d *containerd.Driver, id string, tier v1alpha1.Tier, caps []string) runtime.Status {
	t.Helper()
	spec := runtime.InstanceSpec{
		ID: id, Workload: "confine", Tier: tier, Image: image,
		Command: script.Sleep(600), Capabilities: caps,
	}
	st, err := d.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopRemove(t, d, id) })
	return st
}

// run runs cmd in instance id and returns its exit code and output (stdout,
// then stderr).
func run(t *testing.T, d *containerd.Driver, id string, cmd ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code, err := d.Exec(context.Background(), id, cmd, nil, &stdout, &stderr)
	if err != nil {
		t.Fatalf("exec %q: %v", cmd, err)
	}
	return code, stdout.String() + stderr.String()
}

// defaultCaps is v1alpha1.DefaultCapabilities as the kernel names them.
func defaultCaps(extra ...string) []string {
	var caps []string
	for _, c := range append(slices.Clone(v1alpha1.DefaultCapabilities), extra...) {
		caps = append(caps, v1alpha1.CapabilityName(c))
	}
	slices.Sort(caps)
	return caps
}

// userns creates a user namespace with root mapped, and a mount namespace
// in it, and mounts a tmpfs there: what an attacker does to get a full
// capability set inside a container.
var userns = []string{"busybox", "unshare", "-U", "-r", "-m", "busybox", "mount", "-t", "tmpfs", "none", "/tmp"}

// ping opens a raw socket and pings the instance's own loopback address
// (runc brings its loopback interface up, gVisor's network stack has one).
var ping = []string{"busybox", "ping", "-c", "1", "-W", "1", "127.0.0.1"}

// TestConfinement checks what a container or sandbox holds: a seccomp filter
// on its init, the default capabilities and no more, no raw sockets, no user
// namespace of its own; and that a capability asked for is granted.
func TestConfinement(t *testing.T) {
	env.Need(t)
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	for _, tier := range tiers(t) {
		t.Run(string(tier), func(t *testing.T) {
			t.Run("default", func(t *testing.T) {
				t.Parallel()
				id := "confine-default-" + string(tier)
				st := startSleeper(t, d, id, tier, nil)
				ps := initStatus(t, d, id)
				if ps.seccomp != "2" {
					t.Errorf("the init has Seccomp: %s, want 2 (a filter)", ps.seccomp)
				}
				if want := defaultCaps(); !slices.Equal(ps.capEff, want) {
					t.Errorf("the init holds %v, want exactly %v", ps.capEff, want)
				}
				for _, c := range []string{"CAP_NET_RAW", "CAP_MKNOD"} {
					if slices.Contains(ps.capEff, c) {
						t.Errorf("the init holds %s without asking", c)
					}
				}
				if code, out := run(t, d, id, ping...); code == 0 || !strings.Contains(out, "permission denied") {
					t.Errorf("ping (a raw socket) without NET_RAW: exit %d, want permission denied\n%s", code, out)
				}
				if code, out := run(t, d, id, userns...); code == 0 {
					t.Errorf("%q succeeded: a user namespace gives the workload every capability\n%s", userns, out)
				}
				if code, out := run(t, d, id, "busybox", "unshare", "-U", "-r", "true"); code == 0 {
					t.Errorf("unshare -U -r succeeded\n%s", out)
				}
				if tier == v1alpha1.TierSandbox {
					// The sandbox's own process on the host: runsc's filter.
					b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.PID))
					if err != nil {
						t.Fatal(err)
					}
					if host := parseStatus(t, string(b)); host.seccomp != "2" {
						t.Errorf("the sandbox's host process %d has Seccomp: %s, want 2", st.PID, host.seccomp)
					}
				}
			})

			if tier == v1alpha1.TierContainer {
				// A sandbox refuses NET_RAW (TestCapabilitiesRefused).
				t.Run("NET_RAW asked", func(t *testing.T) {
					t.Parallel()
					id := "confine-net-raw-" + string(tier)
					startSleeper(t, d, id, tier, []string{"NET_RAW"})
					ps := initStatus(t, d, id)
					if want := defaultCaps("NET_RAW"); !slices.Equal(ps.capEff, want) {
						t.Errorf("an instance that asks for NET_RAW holds %v, want %v", ps.capEff, want)
					}
					if ps.seccomp != "2" {
						t.Errorf("Seccomp: %s, want 2", ps.seccomp)
					}
					if code, out := run(t, d, id, ping...); code != 0 {
						t.Errorf("ping (a raw socket) with NET_RAW: exit %d\n%s", code, out)
					}
				})
			}

			if tier == v1alpha1.TierContainer {
				t.Run("ALL asked", func(t *testing.T) {
					t.Parallel()
					id := "confine-all-" + string(tier)
					startSleeper(t, d, id, tier, []string{"ALL"})
					ps := initStatus(t, d, id)
					held, err := cap.Current()
					if err != nil {
						t.Fatal(err)
					}
					slices.Sort(held)
					if !slices.Equal(ps.capEff, held) {
						t.Errorf("an instance that asks for ALL holds %v, want what the test holds, %v", ps.capEff, held)
					}
					if ps.seccomp != "2" {
						t.Errorf("Seccomp: %s, want 2", ps.seccomp)
					}
				})
			}

			t.Run("SYS_ADMIN asked", func(t *testing.T) {
				// The control of the userns check above: with CAP_SYS_ADMIN the
				// profile allows unshare, and the same command works.
				t.Parallel()
				id := "confine-sys-admin-" + string(tier)
				startSleeper(t, d, id, tier, []string{"CAP_SYS_ADMIN"})
				if code, out := run(t, d, id, userns...); code != 0 {
					t.Errorf("%q failed with CAP_SYS_ADMIN: exit %d\n%s", userns, code, out)
				}
			})
		})
	}
}

// initStatus reads what /proc/1/status says inside instance id.
func initStatus(t *testing.T, d *containerd.Driver, id string) procStatus {
	t.Helper()
	code, out := run(t, d, id, "cat", "/proc/1/status")
	if code != 0 {
		t.Fatalf("cat /proc/1/status: exit %d: %s", code, out)
	}
	return parseStatus(t, out)
}

// TestCapabilitiesRefused checks that a capability the kernel does not know,
// and NET_RAW in a sandbox (gVisor drops it), are refused before anything is
// made.
func TestCapabilitiesRefused(t *testing.T) {
	env.Need(t)
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	tests := []struct {
		tier v1alpha1.Tier
		caps []string
		want error
	}{
		{v1alpha1.TierContainer, []string{"NET_BIND_SERVICE", "CAP_TELEPORT"}, runtime.ErrInvalid},
		{v1alpha1.TierContainer, []string{heldNot(t)}, runtime.ErrUnsupported},
		{v1alpha1.TierSandbox, []string{"NET_RAW"}, runtime.ErrUnsupported},
		{v1alpha1.TierSandbox, []string{"ALL"}, runtime.ErrUnsupported},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(tt.tier, tt.caps), func(t *testing.T) {
			if tt.tier == v1alpha1.TierSandbox && env.Runsc == "" {
				testenv.Skipf(t, "%s", "skipping: "+env.NoRunsc)
			}
			spec := runtime.InstanceSpec{
				ID: fmt.Sprint("refused-", i), Workload: "refused", Tier: tt.tier, Image: image,
				Command: script.Sleep(600), Capabilities: tt.caps,
			}
			_, err := d.Start(context.Background(), spec)
			if !errors.Is(err, tt.want) {
				if err == nil {
					stopRemove(t, d, spec.ID)
				}
				t.Fatalf("start with capabilities %q in tier %s: %v, want %v", tt.caps, tt.tier, err, tt.want)
			}
			t.Log(err)
			if _, err := d.Status(context.Background(), spec.ID); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("a refused start left instance %s: %v", spec.ID, err)
			}
		})
	}
}

// heldNot returns a capability the kernel knows and this process does not
// hold (root on some hosts lacks CAP_SYS_RESOURCE), or skips t.
func heldNot(t *testing.T) string {
	held, err := cap.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cap.Known() {
		if !slices.Contains(held, c) {
			return c
		}
	}
	t.Skip("skipping: this process holds every capability")
	return ""
}
