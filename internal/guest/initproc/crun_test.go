package initproc

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/testenv"
)

// TestCrunStateFiles runs the host's crun on a bundle the guest writes
// (ociSpec) and checks that fileState reads crun's directory as the guest
// relies on: a run is created and running once its status file is there
// (it makes no exec FIFO), and gone once crun has deleted it at the end; a
// create is created but not running until the start. crun runs in a mount
// namespace of its own without the host's cgroup2 mount, as the host's
// hybrid cgroups need (the guest has cgroup v2 alone).
func TestCrunStateFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: crun needs root")
	}
	crun, err := exec.LookPath("crun")
	if err != nil {
		testenv.Skipf(t, "skipping: no crun (%v); make host-setup installs it", err)
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Skipf(t, "skipping: no busybox (%v); make host-setup installs busybox-static", err)
	}
	dir := t.TempDir()
	root, bundle := filepath.Join(dir, "state"), filepath.Join(dir, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	// crun runs as the guest runs it: `crun --root ROOT ...` in the bundle,
	// its output (and the container's) going to a file, as the guest's
	// does: a container made by a create holds it open.
	logFile, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	run := func(args ...string) *exec.Cmd {
		sh := `umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"`
		cmd := exec.Command("unshare", append([]string{"-m", "sh", "-c", sh, "sh", crun, "--root", root}, args...)...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = bundle, logFile, logFile
		return cmd
	}
	output := func() string {
		b, _ := os.ReadFile(logFile.Name())
		return string(b)
	}
	write := func(id string) {
		spec, err := ociSpec(id, guest.ContainerSpec{Args: []string{"/bin/busybox", "sleep", "60"}, MemoryBytes: 64 << 20, Pids: 32}, rootfs)
		if err != nil {
			t.Fatal(err)
		}
		// The host's root may not raise its open files' limit to the
		// guest's (it lacks CAP_SYS_RESOURCE); the guest's root may.
		spec.Process.Rlimits = nil
		b, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// IDs of this test's own: on the host, the cgroups (/strata/<id>) are
	// beside those of other tests' containers.
	id1, id2 := fmt.Sprintf("crunstate-%d-1", os.Getpid()), fmt.Sprintf("crunstate-%d-2", os.Getpid())
	c := &container{id: id1}
	_, file, _ := c.stateFiles()
	state := func(id string) (bool, bool) { return fileState(filepath.Join(root, id), file) }
	t.Cleanup(func() {
		for _, id := range []string{id1, id2} {
			_ = run("delete", "--force", id).Run()
			// crun removes the cgroup it made ("ctr"), not its parent.
			dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", containerCgroup(id)))
			for _, d := range dirs {
				_ = removeCgroup(d, 5*time.Second)
			}
		}
	})

	// run: created and running as soon as crun knows it.
	write(id1)
	runCmd := run("run", "--bundle", bundle, id1)
	if err := runCmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		created, running := state(id1)
		if created {
			if !running {
				t.Error("crun run: created but not running; a run makes no exec FIFO")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("crun run: no %s in %s within 30 s: %s", file, filepath.Join(root, id1), output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := run("kill", id1, "KILL").Run(); err != nil {
		t.Fatalf("crun kill: %v: %s", err, output())
	}
	// The process's end: its exit code is the guest's reaper's business
	// (another test of the package may reap it first), the state's end
	// is crun's.
	_ = runCmd.Wait()
	// crun removes its whole directory of the container as the run ends,
	// so that a remove has no crun delete to run.
	for deadline := time.Now().Add(30 * time.Second); stateDirLeft(filepath.Join(root, id1)); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("crun run has ended, and %s is still there 30 s on", filepath.Join(root, id1))
		}
	}
	if created, _ := state(id1); created {
		t.Errorf("crun run has ended: created, with its directory gone")
	}

	// create, then start: created, not running, until the start.
	write(id2)
	if err := run("create", "--bundle", bundle, id2).Run(); err != nil {
		t.Fatalf("crun create: %v: %s", err, output())
	}
	if created, running := state(id2); !created || running {
		t.Errorf("after crun create: created %t, running %t; want true, false", created, running)
	}
	if !stateDirLeft(filepath.Join(root, id2)) {
		t.Errorf("after crun create: %s is not there; remove would not delete the container", filepath.Join(root, id2))
	}
	if sbx := (&container{id: id2, spec: guest.ContainerSpec{Runtime: guest.RuntimeRunsc}}); !sbx.runtimeStateLeft() {
		t.Error("runsc: no state left; want remove to ask runsc to delete, always")
	}
	if err := run("start", id2).Run(); err != nil {
		t.Fatalf("crun start: %v: %s", err, output())
	}
	if created, running := state(id2); !created || !running {
		t.Errorf("after crun start: created %t, running %t; want true, true", created, running)
	}
}
