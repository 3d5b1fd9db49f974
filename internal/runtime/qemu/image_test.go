package qemu_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest"
)

// TestDriverSuite runs the shared driver suite with image VMs: every
// behaviour a container has, the VM tier has too.
func TestDriverSuite(t *testing.T) {
	e := needImageVMs(t)
	state := t.TempDir()
	drivertest.Run(t, func(t *testing.T) runtime.Driver { return e.driver(t, state) }, drivertest.Options{
		Tier: v1alpha1.TierVM, Image: e.image, Prefix: "v", Timeout: 2 * time.Minute,
		// Two TCG boots at once keep both cores busy for about two seconds.
		MaxBoots: 2, BootTime: 2500 * time.Millisecond,
		// The log is the VM's serial console: the kernel and strata's init write there too.
		ConsoleLog: true,
	})
}

var tick = regexp.MustCompile(`tick (\d+)`)

// ticks returns the tick numbers in the log, in order.
func ticks(t *testing.T, path string) []int {
	t.Helper()
	data, _ := os.ReadFile(path)
	var out []int
	for _, m := range tick.FindAllSubmatch(data, -1) {
		n, _ := strconv.Atoi(string(m[1]))
		out = append(out, n)
	}
	return out
}

// TestSaveRestore saves a running guest's state, lets it run on and change
// its disk, restores, and checks that the guest resumes from the saved
// moment: its in-memory counter and its disk are as they were.
func TestSaveRestore(t *testing.T) {
	e := needImageVMs(t)
	dir := t.TempDir()
	d := e.driver(t, filepath.Join(dir, "state"))
	spec := runtime.InstanceSpec{
		ID: "saved", Workload: "saved", Tier: v1alpha1.TierVM, Image: e.image,
		Command: []string{"sh", "-c", "echo before > /marker; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"},
		LogPath: filepath.Join(dir, "saved.log"),
	}
	removeAll(t, d, spec.ID)
	if _, err := d.Start(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the counter to reach 5", time.Minute, func() bool { n := ticks(t, spec.LogPath); return len(n) > 0 && n[len(n)-1] >= 5 })

	begin := time.Now()
	saved, err := d.SaveState(t.Context(), spec.ID, filepath.Join(dir, "saved"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("save took %v", time.Since(begin))
	atSave := ticks(t, spec.LogPath)
	last := atSave[len(atSave)-1]

	// The guest runs on after the save and changes its disk.
	var out bytes.Buffer
	if code, err := d.Exec(t.Context(), spec.ID, []string{"sh", "-c", "echo after > /marker; sync; cat /marker"}, nil, &out, nil); err != nil || code != 0 || out.String() != "after\n" {
		t.Fatalf("exec after the save: %d %q %v", code, out.String(), err)
	}
	waitFor(t, "the counter to move on by 10", time.Minute, func() bool { n := ticks(t, spec.LogPath); return n[len(n)-1] >= last+10 })

	if err := d.Pause(t.Context(), spec.ID); err != nil {
		t.Fatal(err)
	}
	before := len(ticks(t, spec.LogPath))
	begin = time.Now()
	if err := d.RestoreState(t.Context(), spec.ID, saved); err != nil {
		t.Fatal(err)
	}
	t.Logf("restore took %v", time.Since(begin))
	waitFor(t, "ticks after the restore", time.Minute, func() bool { return len(ticks(t, spec.LogPath)) >= before+3 })
	resumed := ticks(t, spec.LogPath)[before]
	if resumed > last+2 {
		t.Errorf("after the restore the counter went on from %d; the save was at %d", resumed, last)
	}
	out.Reset()
	if code, err := d.Exec(t.Context(), spec.ID, []string{"cat", "/marker"}, nil, &out, nil); err != nil || code != 0 || out.String() != "before\n" {
		t.Errorf("the restored disk: exec gave %d %q %v; want \"before\"", code, out.String(), err)
	}
	st, err := d.Status(t.Context(), spec.ID)
	if err != nil || st.State != runtime.StateRunning {
		t.Errorf("after the restore: %+v %v", st, err)
	}
	if !strings.Contains(st.Message, "running") {
		t.Errorf("status message %q", st.Message)
	}
}
