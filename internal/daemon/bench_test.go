package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/runtime/drivertest/script"
)

// The apply-to-Running benchmark runs the real strata binary as e2e_test.go does (its own
// containerd, inside a network namespace of its own, entered with nsenter) and compares
// strata starting one container with containerd's own client, ctr, starting the same
// container on the same containerd.

const (
	benchImage = "localhost/busybox:1"
	// benchCtrNamespace is the containerd namespace of the ctr runs, apart from strata's.
	benchCtrNamespace = "bench"
	// benchMemory and benchCPUs are strata's default resources (128Mi, 100m), given to ctr
	// too so that both set up the same cgroup limits.
	benchMemory = 128 << 20
	benchCPUs   = "0.1"
)

// benchCommand is what both runs start: a shell that sleeps and ends at once on SIGTERM, so
// that removing the instance between iterations does not wait for the stop grace.
var benchCommand = script.Serve(100000)

// benchDaemon is the end-to-end harness with what the benchmark adds: containerd's own
// client against the daemon's containerd.
type benchDaemon struct{ *e2e }

// newBenchDaemon starts the daemon as the end-to-end test does and imports the busybox image;
// the cleanup also removes the containers ctr started.
func newBenchDaemon(tb testing.TB) *benchDaemon {
	tb.Helper()
	if _, err := exec.LookPath("ctr"); err != nil {
		tb.Skip("ctr not found: run `make host-setup`")
	}
	d := &benchDaemon{newE2E(tb)}
	d.beforeStop = func() {
		if out, err := d.ctr(benchCtrNamespace, "containers", "list", "--quiet"); err == nil {
			for _, id := range strings.Fields(out) {
				d.removeCtr(id)
			}
		}
	}
	d.start()
	if out := d.must("image", "import", d.imageTar()); !strings.Contains(out, "imported "+benchImage) {
		tb.Fatalf("image import: %s", out)
	}
	return d
}

func (d *benchDaemon) imageTar() string { return filepath.Join(d.dir, "busybox.tar") }

// containerdSocket is where the daemon's private containerd listens.
func (d *benchDaemon) containerdSocket() string {
	return filepath.Join(d.dir, "data", "containerd", "containerd.sock")
}

// ctr runs containerd's client against the daemon's containerd in namespace ns.
func (d *benchDaemon) ctr(ns string, args ...string) (string, error) {
	return run("ctr", append([]string{"--address", d.containerdSocket(), "--namespace", ns}, args...)...)
}

// nothingLeft checks that no instance of strata's remains: no container in its containerd
// namespace and no instance network namespace.
func (d *benchDaemon) nothingLeft() error {
	if entries, _ := os.ReadDir(filepath.Join(d.dir, "netns")); len(entries) > 0 {
		return fmt.Errorf("%d instance network namespaces left", len(entries))
	}
	out, err := d.ctr("strata", "containers", "list", "--quiet")
	if err != nil {
		return err
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		return fmt.Errorf("containers left: %v", ids)
	}
	return nil
}

// removeCtr removes a container that ctr started, with its task and snapshot.
func (d *benchDaemon) removeCtr(id string) {
	d.t.Helper()
	if _, err := d.ctr(benchCtrNamespace, "tasks", "delete", "--force", id); err != nil && !strings.Contains(err.Error(), "not found") {
		d.t.Errorf("remove ctr task %s: %v", id, err)
	}
	if _, err := d.ctr(benchCtrNamespace, "containers", "delete", id); err != nil {
		d.t.Errorf("remove ctr container %s: %v", id, err)
	}
}

// runningWatch is a watch of the workloads that waits for one of them to run.
type runningWatch struct {
	cancel context.CancelFunc
	done   chan error
}

// watchRunning starts watching workloads from the current revision; done receives nil once
// name's status says Running (every instance running), or the error that ended the watch.
func (d *benchDaemon) watchRunning(c *client.Client, name string) *runningWatch {
	d.t.Helper()
	var list struct {
		ResourceVersion string `json:"resourceVersion"`
	}
	if err := c.List(context.Background(), "workloads", &list); err != nil {
		d.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	w := &runningWatch{cancel: cancel, done: make(chan error, 1)}
	errRunning := errors.New("running")
	go func() {
		err := c.Watch(ctx, "workloads", list.ResourceVersion, func(_ string, obj json.RawMessage) error {
			var wl v1alpha1.Workload
			if err := json.Unmarshal(obj, &wl); err != nil {
				return err
			}
			if wl.Metadata.Name == name && wl.Status != nil && wl.Status.Phase == v1alpha1.PhaseRunning {
				return errRunning
			}
			return nil
		})
		switch {
		case errors.Is(err, errRunning):
			err = nil
		case err == nil:
			err = fmt.Errorf("workload %s not Running within 2m", name)
		}
		w.done <- err
	}()
	return w
}

// BenchmarkApplyToRunning measures the time from `strata apply` of a one-replica workload to
// its status saying Running, against `ctr run -d` of the same image and command on the same
// containerd. Both include starting their client process and setting up the container's
// cgroup limits (strata's defaults, 100m and 128Mi); strata also admits and assesses the
// workload, stores it, reconciles it, creates the instance's network namespace and veth on
// the default segment and writes its status, which the benchmark sees through a watch.
// Removing the instance between iterations is not timed. apply-ms/op is the part until
// `strata apply` returned (the workload stored); the rest is the controller's.
func BenchmarkApplyToRunning(b *testing.B) {
	d := newBenchDaemon(b)
	if _, err := d.ctr(benchCtrNamespace, "images", "import", d.imageTar()); err != nil {
		b.Fatal(err)
	}
	iteration := 0
	b.Run("strata", func(b *testing.B) {
		c := client.NewUnix(d.socket)
		var applied time.Duration // until `strata apply` returned
		for range b.N {
			b.StopTimer()
			iteration++
			name := fmt.Sprintf("bench-%d", iteration)
			cmd, _ := json.Marshal(benchCommand)
			doc := fmt.Sprintf("apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: %s}\nspec:\n  image: %s\n  command: %s\n", name, benchImage, cmd)
			file := filepath.Join(d.dir, name+".yaml")
			if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
				b.Fatal(err)
			}
			w := d.watchRunning(c, name)
			b.StartTimer()
			t0 := time.Now()
			if out, err := d.strata("apply", "-f", file); err != nil || out != "workload/"+name+" created\n" {
				b.Fatalf("apply: %q, %v", out, err)
			}
			applied += time.Since(t0)
			err := <-w.done
			b.StopTimer()
			w.cancel()
			if err != nil {
				log, _ := os.ReadFile(filepath.Join(d.dir, "serve.log"))
				b.Fatalf("%v\ndaemon log (tail):\n%s", err, tail(string(log), 30))
			}
			d.must("delete", "workload", name)
			d.eventually("the instance is removed", 60*time.Second, d.nothingLeft)
			b.StartTimer()
		}
		b.ReportMetric(float64(applied)/float64(time.Millisecond)/float64(b.N), "apply-ms/op")
	})
	b.Run("ctr", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			iteration++
			id := fmt.Sprintf("ctr-%d", iteration)
			args := append([]string{"run", "--detach", "--log-uri", "file://" + filepath.Join(d.dir, id+".log"),
				"--memory-limit", strconv.Itoa(benchMemory), "--cpus", benchCPUs, benchImage, id}, benchCommand...)
			b.StartTimer()
			if _, err := d.ctr(benchCtrNamespace, args...); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			out, err := d.ctr(benchCtrNamespace, "tasks", "list")
			if err != nil || !strings.Contains(out, "RUNNING") {
				b.Fatalf("ctr run returned but the task is not running: %q, %v", out, err)
			}
			d.removeCtr(id)
			b.StartTimer()
		}
	})
}
