package ctrdtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/containerd/ctrdtest"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/testenv"
)

// TestTeardown starts a private containerd, leaves a running instance in
// it, and checks that Teardown reports it and removes every trace: the
// processes, the cgroups, the mounts and the test directory.
func TestTeardown(t *testing.T) {
	if why := ctrdtest.Prerequisites(); why != "" {
		testenv.Skipf(t, "%s", "skipping: "+why)
	}
	e, err := ctrdtest.Start("strata-ctrdtest-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Teardown() }()
	if !strings.HasPrefix(e.StateDir, e.Dir+"/") || !strings.HasPrefix(e.Address, e.Dir+"/") {
		t.Errorf("state dir %s, socket %s: want both inside %s", e.StateDir, e.Address, e.Dir)
	}

	d := e.NewDriver(t)
	const ref = "localhost/strata/ctrdtest:1"
	ctrdtest.ImportImage(t, d, ref)
	ctx := context.Background()
	st, err := d.Start(ctx, runtime.InstanceSpec{
		ID: "left", Workload: "left", Tier: v1alpha1.TierContainer, Image: ref, Command: script.Sleep(600),
	})
	if err != nil {
		t.Fatal(err)
	}
	left, err := e.Leftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != "container left" {
		t.Errorf("leftovers %q, want the container", left)
	}

	if err := d.Close(); err != nil { // before containerd goes
		t.Error(err)
	}
	err = e.Teardown()
	if err == nil || !strings.Contains(err.Error(), "container left left by a test") {
		t.Errorf("teardown: %v, want it to report the container", err)
	}
	if again := e.Teardown(); fmt.Sprint(again) != fmt.Sprint(err) {
		t.Errorf("second teardown: %v, want the first one's result", again)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", st.PID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the instance's process %d survived the teardown", st.PID)
	}
	if _, err := os.Stat(e.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("test directory: %v, want it gone", err)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", e.Namespace)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the test namespace's memory cgroup: %v, want it gone", err)
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mountinfo), " "+e.Dir+"/") {
		t.Errorf("mounts left under %s", e.Dir)
	}
	for _, pid := range processesNaming(e.Dir + "/") {
		t.Errorf("process %d still names the test directory", pid)
	}
}

// processesNaming lists the processes whose command line contains s.
func processesNaming(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmdline), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}
