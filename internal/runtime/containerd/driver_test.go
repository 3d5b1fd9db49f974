package containerd_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/containerd"
	"strata.dev/strata/internal/runtime/containerd/ctrdtest"
	"strata.dev/strata/internal/runtime/drivertest"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/testenv"
)

func factory(t *testing.T) runtime.Driver { return env.NewDriver(t) }

// leftovers reports what containerd, the cgroups and the runtimes' state
// still hold of instance id.
func leftovers(t *testing.T, id string) []string {
	c, err := ctr.New(env.Address, ctr.WithDefaultNamespace(env.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := namespaces.WithNamespace(context.Background(), env.Namespace)
	var left []string
	if cont, err := c.LoadContainer(ctx, id); err == nil {
		left = append(left, "container")
		if _, err := cont.Task(ctx, nil); err == nil {
			left = append(left, "task")
		}
	} else if !errdefs.IsNotFound(err) {
		t.Fatal(err)
	}
	if _, err := c.SnapshotService(containerd.DefaultSnapshotter).Stat(ctx, id); err == nil {
		left = append(left, "snapshot")
	}
	for _, hierarchy := range []string{"memory", "cpu", "pids"} {
		p := filepath.Join("/sys/fs/cgroup", hierarchy, env.Namespace, id)
		if _, err := os.Stat(p); err == nil {
			left = append(left, "cgroup "+p)
		}
	}
	for _, rt := range []string{"runc", "runsc"} {
		p := filepath.Join(env.StateDir, rt, id)
		if _, err := os.Stat(p); err == nil {
			left = append(left, "runtime state "+p)
		}
	}
	return left
}

func TestContainerTier(t *testing.T) {
	env.Need(t)
	drivertest.Run(t, factory, drivertest.Options{
		Tier:      v1alpha1.TierContainer,
		Prefix:    "c",
		Leftovers: leftovers,
	})
}

func TestSandboxTier(t *testing.T) {
	env.Need(t)
	if env.Runsc == "" {
		testenv.Skipf(t, "%s", "skipping the sandbox tier: "+env.NoRunsc)
	}
	drivertest.Run(t, factory, drivertest.Options{
		Tier:      v1alpha1.TierSandbox,
		Prefix:    "s",
		Leftovers: leftovers,
	})
}

// tiers returns the tiers the test containerd can run.
func tiers(t testing.TB) []v1alpha1.Tier {
	ts := []v1alpha1.Tier{v1alpha1.TierContainer}
	if env.Runsc != "" {
		ts = append(ts, v1alpha1.TierSandbox)
	} else {
		t.Log("sandbox tier not tested: " + env.NoRunsc)
	}
	return ts
}

const image = "localhost/strata/containerd-test:1"

// TestNetNS checks that an instance joins the prepared network namespace.
func TestNetNS(t *testing.T) {
	env.Need(t)
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.Skipf(t, "skipping: ip (iproute2) not installed")
	}
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	for _, tier := range tiers(t) {
		t.Run(string(tier), func(t *testing.T) {
			name := fmt.Sprintf("strata-test-%d-%s", os.Getpid(), tier)
			if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
				t.Fatalf("ip netns add: %v: %s", err, out)
			}
			t.Cleanup(func() {
				if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
					t.Errorf("ip netns delete: %v: %s", err, out)
				}
			})
			netns := "/run/netns/" + name
			spec := runtime.InstanceSpec{
				ID: "netns-" + string(tier), Workload: "netns", Tier: tier, Image: image,
				Command: script.Sleep(600), NetNS: netns,
			}
			st, err := d.Start(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			defer stopRemove(t, d, spec.ID)
			var want, got syscall.Stat_t
			if err := syscall.Stat(netns, &want); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", st.PID), &got); err != nil {
				t.Fatal(err)
			}
			if got.Ino != want.Ino || got.Dev != want.Dev {
				t.Errorf("instance's init (pid %d) is in network namespace %d, want %s (%d)", st.PID, got.Ino, netns, want.Ino)
			}
		})
	}
}

// TestCPULimit checks that CPUMilli becomes the instance cgroup's CFS quota.
func TestCPULimit(t *testing.T) {
	env.Need(t)
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	for _, tier := range tiers(t) {
		t.Run(string(tier), func(t *testing.T) {
			spec := runtime.InstanceSpec{
				ID: "cpu-" + string(tier), Workload: "cpu", Tier: tier, Image: image,
				Command: script.Sleep(600), CPUMilli: 250, MemoryBytes: 200 << 20,
			}
			if _, err := d.Start(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			defer stopRemove(t, d, spec.ID)
			for file, want := range map[string]string{
				"cpu/" + env.Namespace + "/" + spec.ID + "/cpu.cfs_quota_us":         "25000",
				"cpu/" + env.Namespace + "/" + spec.ID + "/cpu.cfs_period_us":        "100000",
				"memory/" + env.Namespace + "/" + spec.ID + "/memory.limit_in_bytes": fmt.Sprint(200 << 20),
			} {
				b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", file))
				if err != nil {
					t.Errorf("%v", err)
					continue
				}
				if got := strings.TrimSpace(string(b)); got != want {
					t.Errorf("%s = %s, want %s", file, got, want)
				}
			}
		})
	}
}

// TestSandboxIsGVisor checks that the sandbox tier really runs under gVisor:
// its kernel says so in dmesg, while the container tier sees the host's.
func TestSandboxIsGVisor(t *testing.T) {
	env.Need(t)
	if env.Runsc == "" {
		testenv.Skipf(t, "%s", "skipping: "+env.NoRunsc)
	}
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	for _, tier := range []v1alpha1.Tier{v1alpha1.TierContainer, v1alpha1.TierSandbox} {
		t.Run(string(tier), func(t *testing.T) {
			spec := runtime.InstanceSpec{
				ID: "kernel-" + string(tier), Workload: "kernel", Tier: tier, Image: image, Command: script.Sleep(600),
			}
			if _, err := d.Start(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			defer stopRemove(t, d, spec.ID)
			var out bytes.Buffer
			code, err := d.Exec(context.Background(), spec.ID, []string{"cat", "/proc/version"}, nil, &out, nil)
			if err != nil || code != 0 {
				t.Fatalf("exec: %d, %v", code, err)
			}
			host, err := os.ReadFile("/proc/version")
			if err != nil {
				t.Fatal(err)
			}
			same := out.String() == string(host)
			if same != (tier == v1alpha1.TierContainer) {
				t.Errorf("tier %s sees kernel %q; host kernel %q", tier, strings.TrimSpace(out.String()), strings.TrimSpace(string(host)))
			}
		})
	}
}

func stopRemove(t testing.TB, d *containerd.Driver, id string) {
	t.Helper()
	ctx := context.Background()
	if err := d.Stop(ctx, id, 0); err != nil {
		t.Errorf("stop %s: %v", id, err)
	}
	if err := d.Remove(ctx, id); err != nil {
		t.Errorf("remove %s: %v", id, err)
	}
}

// BenchmarkStart measures start-to-running (Start returns with the main
// process running) per tier; each iteration also stops and removes the
// instance outside the timer.
func BenchmarkStart(b *testing.B) {
	env.Need(b)
	d := env.NewDriver(b)
	ctrdtest.ImportImage(b, d, image)
	for _, tier := range tiers(b) {
		b.Run(string(tier), func(b *testing.B) {
			ctx := context.Background()
			for i := 0; b.Loop(); i++ {
				spec := runtime.InstanceSpec{
					ID: fmt.Sprintf("bench-%s-%d", tier, i), Workload: "bench", Tier: tier, Image: image,
					Command: script.Sleep(600),
				}
				st, err := d.Start(ctx, spec)
				if err != nil || st.State != runtime.StateRunning {
					b.Fatalf("start: %+v, %v", st, err)
				}
				b.StopTimer()
				if err := d.Stop(ctx, spec.ID, 0); err != nil {
					b.Fatal(err)
				}
				if err := d.Remove(ctx, spec.ID); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkRunToExit measures a whole short-lived instance: Start of
// `echo`, wait for its exit, Remove.
func BenchmarkRunToExit(b *testing.B) {
	env.Need(b)
	d := env.NewDriver(b)
	ctrdtest.ImportImage(b, d, image)
	for _, tier := range tiers(b) {
		b.Run(string(tier), func(b *testing.B) {
			ctx := context.Background()
			for i := 0; b.Loop(); i++ {
				spec := runtime.InstanceSpec{
					ID: fmt.Sprintf("exit-%s-%d", tier, i), Workload: "bench", Tier: tier, Image: image,
					Command: script.Echo("hi"),
				}
				if _, err := d.Start(ctx, spec); err != nil {
					b.Fatal(err)
				}
				for {
					st, err := d.Status(ctx, spec.ID)
					if err != nil {
						b.Fatal(err)
					}
					if st.State == runtime.StateExited {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				if err := d.Remove(ctx, spec.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestStaleTaskReplaced: a task whose container record is gone (a removal interrupted
// halfway) does not block a new instance with its ID.
func TestStaleTaskReplaced(t *testing.T) {
	env.Need(t)
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	ctx := context.Background()
	spec := runtime.InstanceSpec{ID: "stale-task", Workload: "stale", Tier: v1alpha1.TierContainer, Image: image, Command: script.Serve(600)}
	old, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ctr.New(env.Address, ctr.WithDefaultNamespace(env.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nctx := namespaces.WithNamespace(ctx, env.Namespace)
	// Drop the container's record behind the driver's back: its task and process stay.
	if err := c.ContainerService().Delete(nctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	st, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatalf("start over a stale task: %v", err)
	}
	defer stopRemove(t, d, spec.ID)
	if st.State != runtime.StateRunning || st.PID == old.PID {
		t.Errorf("new instance %+v; the old one had pid %d", st, old.PID)
	}
	if err := syscall.Kill(old.PID, 0); err == nil {
		t.Errorf("the stale task's process %d still runs", old.PID)
	}
}

// TestSandboxIDPrefix: two sandboxes whose IDs begin alike (a workload's
// replicas 1 and 10, or workloads shop and shop-1) are each reached by
// their own ID: runsc looks a container up by ID prefix.
func TestSandboxIDPrefix(t *testing.T) {
	env.Need(t)
	if env.Runsc == "" {
		testenv.Skipf(t, "%s", "skipping: "+env.NoRunsc)
	}
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	ctx := context.Background()
	for _, id := range []string{"prefix-1", "prefix-10"} {
		spec := runtime.InstanceSpec{ID: id, Workload: "prefix", Tier: v1alpha1.TierSandbox, Image: image, Command: script.Sleep(600)}
		if _, err := d.Start(ctx, spec); err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		defer stopRemove(t, d, id)
	}
	for _, id := range []string{"prefix-1", "prefix-10"} {
		var out bytes.Buffer
		if code, err := d.Exec(ctx, id, []string{"true"}, nil, &out, nil); err != nil || code != 0 {
			t.Errorf("exec in %s: %d, %v", id, code, err)
		}
		if st, err := d.Status(ctx, id); err != nil || st.State != runtime.StateRunning {
			t.Errorf("status of %s: %+v, %v", id, st, err)
		}
	}
	if err := d.Stop(ctx, "prefix-1", 5*time.Second); err != nil {
		t.Errorf("stop prefix-1 beside prefix-10: %v", err)
	}
}
