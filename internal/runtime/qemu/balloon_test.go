package qemu_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// residentMiB is the resident memory of process pid in MiB.
func residentMiB(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestFreePageReporting: memory an image VM's guest touched and freed again goes back to
// the host. The guest (128 MiB, the size of a small image VM) fills 48 MiB (dd's buffer, 20
// times over so that it is held long enough to be seen) and frees it; QEMU's resident memory
// then falls by most of that within seconds, through the balloon's free page reporting. (At
// the kernel's default reporting order a zone reports only while it has 64 MiB free beyond
// its low watermark, which a 128 MiB guest never has; the guest init lowers the order.)
func TestFreePageReporting(t *testing.T) {
	e := needImageVMs(t)
	dir := t.TempDir()
	d := e.driver(t, filepath.Join(dir, "state"))
	spec := runtime.InstanceSpec{
		ID: "balloon", Workload: "balloon", Tier: v1alpha1.TierVM, Image: e.image, MemoryBytes: 128 << 20,
		Command: []string{"sh", "-c", "sleep 1; dd if=/dev/zero of=/dev/null bs=48M count=20 2>/dev/null; echo freed; sleep 1000"},
		LogPath: filepath.Join(dir, "balloon.log"),
	}
	removeAll(t, d, spec.ID)
	st, err := d.Start(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	// QEMU's resident memory is sampled from the start: the guest may free its
	// buffer, and report it, before the test reads the log line.
	peak, low := 0, 0
	sample := func() {
		rss := residentMiB(t, st.PID)
		if rss > peak {
			peak, low = rss, rss
		}
		low = min(low, rss)
	}
	waitFor(t, "the guest to free its buffer", time.Minute, func() bool {
		sample()
		data, _ := os.ReadFile(spec.LogPath)
		return strings.Contains(string(data), "freed")
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && low > peak-32 {
		time.Sleep(100 * time.Millisecond)
		sample()
	}
	t.Logf("QEMU resident after the guest freed 48 MiB: %d MiB, then %d MiB", peak, low)
	if low > peak-32 {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.PID))
		log, _ := os.ReadFile(spec.LogPath)
		t.Errorf("QEMU's resident memory went from %d to %d MiB only; want at least 32 MiB of the freed 48 back\nQEMU: %s\nconsole:\n%s",
			peak, low, strings.ReplaceAll(string(cmdline), "\x00", " "), log)
	}
}
