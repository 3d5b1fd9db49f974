package nodevm_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/runtime/nodevm"
	"strata.dev/strata/internal/testenv"
)

// needRunsc skips t unless the node VMs carry runsc.
func needRunsc(t *testing.T, s setup) {
	t.Helper()
	if s.tools.Runsc == "" {
		testenv.Skipf(t, "skipping: no runsc at /opt/strata/bin/runsc; make host-setup builds it")
	}
}

// sandbox is a sandbox-tier instance spec running command.
func (s setup) sandbox(t *testing.T, id string, command []string) runtime.InstanceSpec {
	return runtime.InstanceSpec{
		ID: id, Workload: id, Tier: v1alpha1.TierSandbox, Image: s.image, Command: command,
		LogPath: filepath.Join(t.TempDir(), id+".log"),
	}
}

// guestCgroups returns a function that runs a shell command in a crun
// container of the default class's node VM, which sees the guest's whole
// cgroup tree (read-only) under /sys/fs/cgroup: the guest itself has no shell.
func (s setup) guestCgroups(t *testing.T, d *nodevm.Driver) func(cmd string) string {
	t.Helper()
	probe := s.serve("cgroups")
	t.Cleanup(func() {
		_ = d.Stop(context.Background(), probe.ID, 0)
		_ = d.Remove(context.Background(), probe.ID)
	})
	if _, err := d.Start(t.Context(), probe); err != nil {
		t.Fatal(err)
	}
	return func(cmd string) string {
		t.Helper()
		var out bytes.Buffer
		code, err := d.Exec(t.Context(), probe.ID, []string{"sh", "-c", cmd}, nil, &out, &out)
		if err != nil || code != 0 {
			t.Fatalf("in the node VM: %s: code %d, %v: %s", cmd, code, err, out.String())
		}
		return strings.TrimSpace(out.String())
	}
}

// TestSandboxLimits: a sandbox (runsc) in a node VM runs in its cgroup in
// the guest, with the replica's memory limit from the start and its CPU
// limit (cpu.max) once it runs, as a crun container does; a sandbox that
// allocates beyond its memory limit is OOM-killed, and the driver says so.
func TestSandboxLimits(t *testing.T) {
	s := needNodeVMs(t)
	needRunsc(t, s)
	s.removeNodeVMs(t)
	d := s.driver(t)
	if !d.Capabilities().Limits {
		t.Error("a driver serving both tiers claims no Limits")
	}
	inGuest := s.guestCgroups(t, d)
	spec := s.sandbox(t, "sbx-limits", script.Serve(600))
	spec.CPUMilli, spec.MemoryBytes = 200, 160<<20
	t.Cleanup(func() {
		_ = d.Stop(context.Background(), spec.ID, 0)
		_ = d.Remove(context.Background(), spec.ID)
	})
	if _, err := d.Start(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	waitServing(t, spec.LogPath)
	const cg = "/sys/fs/cgroup/strata/sbx-limits/ctr"
	got := inGuest("cat " + cg + "/cpu.max " + cg + "/memory.max; wc -l < " + cg + "/cgroup.procs")
	lines := strings.Fields(got)
	if len(lines) != 4 || lines[0]+" "+lines[1] != "20000 100000" || lines[2] != "167772160" || lines[3] == "0" {
		t.Errorf("the sandbox's cgroup %s: cpu.max, memory.max and its count of processes are %q; want 20000 100000, 167772160 and at least one", cg, got)
	}

	oom := s.sandbox(t, "sbx-oom", script.Allocate(512))
	oom.CPUMilli, oom.MemoryBytes = 500, 128<<20
	t.Cleanup(func() { _ = d.Remove(context.Background(), oom.ID) })
	if _, err := d.Start(t.Context(), oom); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, err := d.Status(t.Context(), oom.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == runtime.StateExited {
			if !st.OOMKilled || st.ExitCode != 137 {
				t.Errorf("a sandbox allocating 512 MiB under a 128 MiB limit: exit code %d, oomKilled %v (%s); want 137, true", st.ExitCode, st.OOMKilled, st.Message)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a sandbox allocating 512 MiB under a 128 MiB limit still %s after 3 minutes", st.State)
		}
		time.Sleep(time.Second)
	}
	if err := d.Remove(t.Context(), oom.ID); err != nil {
		t.Errorf("remove %s: %v", oom.ID, err)
	}
	if left := inGuest("ls /sys/fs/cgroup/strata"); strings.Contains(left, oom.ID) {
		t.Errorf("cgroups left in the node VM after the remove: %s", left)
	}
}
