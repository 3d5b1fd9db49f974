package kubecluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestReapOrphans makes what a cluster whose test process died leaves (a
// directory whose owner is gone, a process naming it, another in the
// pods' cgroup, a mount under it, the network namespace and the cgroups)
// and checks that the next Start's reaping removes all of it.
func TestReapOrphans(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (network namespace, cgroups, mounts)")
	}
	dir, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Dir: dir, Name: filepath.Base(dir)}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(gone.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.makeNetns(); err != nil {
		t.Fatal(err)
	}
	_ = c.netnsFD.Close()
	if err := c.makeCgroupRoot(); err != nil {
		t.Fatal(err)
	}
	naming := exec.Command("tail", "-f", filepath.Join(dir, ownerFile))
	inCgroup := exec.Command("sleep", "300")
	for _, cmd := range []*exec.Cmd{naming, inCgroup} {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
	}
	pidsCgroup := ""
	for _, h := range cgroupHierarchies() {
		if filepath.Base(h) == "pids" {
			pidsCgroup = filepath.Join(h, c.Name)
		}
	}
	if pidsCgroup == "" {
		t.Fatal("no pids cgroup hierarchy")
	}
	if err := os.WriteFile(filepath.Join(pidsCgroup, "cgroup.procs"), []byte(strconv.Itoa(inCgroup.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "m")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	if l := Leftovers(dir, c.Name); len(l.Processes) != 1 || len(l.Mounts) != 1 || !l.Netns || len(l.Cgroups) == 0 {
		t.Fatalf("the made orphan is not what the test wants: %s", l)
	}

	reapOrphans(t)

	if l := Leftovers(dir, c.Name); !l.Empty() {
		t.Errorf("after reaping, left: %s", l)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("after reaping, %s is still there (%v)", dir, err)
	}
	for _, cmd := range []*exec.Cmd{naming, inCgroup} {
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("%s still runs after reaping", cmd.Path)
		}
	}
}
