package initproc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/internal/guest"
)

// TestCgroupUsage reads a container's cgroup v2 directory as the guest's
// kernel writes it: cpu.stat in microseconds, memory.current in bytes.
func TestCgroupUsage(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cpu.stat", "usage_usec 2750000\nuser_usec 2500000\nsystem_usec 250000\nnr_periods 40\nnr_throttled 3\nthrottled_usec 91000\nnr_bursts 0\nburst_usec 0\n")
	write("memory.current", "4718592\n")
	st, err := cgroupUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.CPUSeconds != 2.75 || st.MemoryBytes != 4718592 {
		t.Errorf("cgroupUsage = %+v, want 2.75 CPU-seconds and 4718592 bytes", st)
	}

	write("cpu.stat", "user_usec 2500000\nsystem_usec 250000\n")
	if _, err := cgroupUsage(dir); err == nil || !strings.Contains(err.Error(), "no usage_usec line") {
		t.Errorf("cpu.stat without usage_usec: %v", err)
	}
	write("cpu.stat", "usage_usec 1\n")
	if err := os.Remove(filepath.Join(dir, "memory.current")); err != nil {
		t.Fatal(err)
	}
	if _, err := cgroupUsage(dir); err == nil || !strings.Contains(err.Error(), "memory controller") {
		t.Errorf("no memory.current: %v", err)
	}
	write("memory.current", "max\n")
	if _, err := cgroupUsage(dir); err == nil || !strings.Contains(err.Error(), "memory.current") {
		t.Errorf("memory.current not a number: %v", err)
	}
}

// TestParseRunscStats reads the stats event runsc prints for `events
// --stats`, also after a log line of its own.
func TestParseRunscStats(t *testing.T) {
	const event = `{"type":"stats","id":"sbx-0","data":{"cpu":{"usage":{"total":1500000000}},` +
		`"memory":{"cache":8192,"usage":{"limit":0,"usage":23068672,"failcnt":0},"swap":{"limit":0,"failcnt":0},` +
		`"kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0}},"pids":{"current":3},"network_interfaces":null}}`
	for _, out := range []string{event + "\n", "W1207 19:52:01.123456   411 container.go:2054] events: no cgroups\n" + event + "\n"} {
		st, err := parseRunscStats(out)
		if err != nil {
			t.Fatalf("parseRunscStats(%q): %v", out, err)
		}
		if st.CPUSeconds != 1.5 || st.MemoryBytes != 23068672 {
			t.Errorf("parseRunscStats = %+v, want 1.5 CPU-seconds and 23068672 bytes", st)
		}
	}
	if _, err := parseRunscStats("container sbx-0 not found\n"); err == nil || !strings.Contains(err.Error(), `no stats event: "container sbx-0 not found"`) {
		t.Errorf("output without an event: %v", err)
	}
}

// TestNodeStatsNotRunning: a container that has ended answers its state
// and no stats, and refuses to pause or resume; an unknown one is an error.
func TestNodeStatsNotRunning(t *testing.T) {
	n := newNode(nil, nil)
	c := &container{id: "web-0", state: guest.StateExited, code: 3, done: make(chan struct{})}
	close(c.done)
	n.containers[c.id] = c
	rep := n.handle(guest.NodeRequest{Op: guest.NodeStats, ID: "web-0"})
	if rep.Error != "" || rep.State != guest.StateExited || rep.Stats != nil || rep.ExitCode == nil || *rep.ExitCode != 3 {
		t.Errorf("stats of an exited container: %+v, want its state and exit code, no stats", rep)
	}
	for _, op := range []string{guest.NodePause, guest.NodeResume} {
		rep := n.handle(guest.NodeRequest{Op: op, ID: "web-0"})
		if want := "container web-0 is exited; only a running container can " + op; rep.Error != want {
			t.Errorf("%s of an exited container: error %q, want %q", op, rep.Error, want)
		}
	}
	if rep := n.handle(guest.NodeRequest{Op: guest.NodeStats, ID: "gone"}); !strings.Contains(rep.Error, `no container "gone"`) {
		t.Errorf("stats of an unknown container: %+v", rep)
	}
}
