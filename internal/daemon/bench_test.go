package daemon_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/testimage"
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

// benchDaemon is a strata daemon for benchmarks: like e2e, with testing.TB.
type benchDaemon struct {
	tb      testing.TB
	bin     string
	dir     string
	netns   string
	socket  string
	daemon  *exec.Cmd
	waitErr chan error
}

// skipUnlessBenchHost skips unless the host can run containers for real.
func skipUnlessBenchHost(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("the apply-to-Running benchmark needs root (containerd, network namespaces)")
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "ip", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			tb.Skipf("%s not found: run `make host-setup`", bin)
		}
	}
	if _, err := os.Stat(testimage.Busybox); err != nil {
		tb.Skipf("%v: run `make host-setup`", testimage.ErrNoBusybox)
	}
}

// newBenchDaemon builds strata, creates the network namespace and the busybox image tarball,
// starts the daemon and imports the image into it; the cleanup stops it all.
func newBenchDaemon(tb testing.TB) *benchDaemon {
	tb.Helper()
	skipUnlessBenchHost(tb)
	dir, err := os.MkdirTemp("", "strata-bench-")
	if err != nil {
		tb.Fatal(err)
	}
	d := &benchDaemon{tb: tb, dir: dir, socket: filepath.Join(dir, "strata.sock"), bin: filepath.Join(dir, "strata")}
	tb.Cleanup(d.cleanup)
	build := exec.Command("go", "build", "-o", d.bin, "strata.dev/strata/cmd/strata")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("build strata: %v\n%s", err, out)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	netns := "strata-bench-" + hex.EncodeToString(suffix)
	if out, err := exec.Command("ip", "netns", "add", netns).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add: %v\n%s", err, out)
	}
	d.netns = netns
	f, err := os.Create(d.imageTar())
	if err != nil {
		tb.Fatal(err)
	}
	if err := testimage.Build(f, benchImage); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
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

// start runs `strata serve` in the network namespace, as e2e.start does.
func (d *benchDaemon) start() {
	d.tb.Helper()
	args := []string{"--net=/run/netns/" + d.netns, d.bin, "serve", "--data-dir", filepath.Join(d.dir, "data"),
		"--socket", d.socket, "--netns-dir", filepath.Join(d.dir, "netns"), "--start-containerd"}
	cmd := exec.Command("nsenter", args...)
	logf, err := os.OpenFile(filepath.Join(d.dir, "serve.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		d.tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		d.tb.Fatal(err)
	}
	d.daemon = cmd
	d.waitErr = make(chan error, 1)
	go func() { d.waitErr <- cmd.Wait(); _ = logf.Close() }()
	d.eventually("the daemon answers", 60*time.Second, func() error {
		_, err := d.strata("get", "workloads")
		return err
	})
}

// stop ends the daemon gracefully; it stops the containerd it started.
func (d *benchDaemon) stop() {
	if d.daemon == nil {
		return
	}
	_ = d.daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.waitErr:
		if err != nil {
			d.tb.Logf("daemon exited: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = d.daemon.Process.Kill()
		if err := <-d.waitErr; err != nil {
			d.tb.Logf("daemon killed after 30s: %v", err)
		}
	}
	d.daemon = nil
}

func (d *benchDaemon) strata(args ...string) (string, error) {
	return run(d.bin, append([]string{"--socket", d.socket}, args...)...)
}

func (d *benchDaemon) must(args ...string) string {
	d.tb.Helper()
	out, err := d.strata(args...)
	if err != nil {
		d.tb.Fatal(err)
	}
	return out
}

// ctr runs containerd's client against the daemon's containerd in namespace ns.
func (d *benchDaemon) ctr(ns string, args ...string) (string, error) {
	return run("ctr", append([]string{"--address", d.containerdSocket(), "--namespace", ns}, args...)...)
}

func run(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (d *benchDaemon) eventually(what string, timeout time.Duration, check func() error) {
	d.tb.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(d.dir, "serve.log"))
	d.tb.Fatalf("%s: not within %s: %v\ndaemon log (tail):\n%s", what, timeout, err, tail(string(log), 30))
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

// cleanup removes what the benchmark made, the way e2e.cleanup does, but ends leftover
// processes by PID: only those whose command line names the benchmark's own directory.
func (d *benchDaemon) cleanup() {
	if d.daemon != nil {
		if out, err := d.strata("get", "workloads", "-o", "json"); err == nil {
			var list struct {
				Items []v1alpha1.Workload `json:"items"`
			}
			if json.Unmarshal([]byte(out), &list) == nil {
				for _, w := range list.Items {
					_, _ = d.strata("delete", "workload", w.Metadata.Name, "--timeout", "60s")
				}
			}
		}
		if out, err := d.ctr(benchCtrNamespace, "containers", "list", "--quiet"); err == nil {
			for _, id := range strings.Fields(out) {
				d.removeCtr(id)
			}
		}
	}
	d.stop()
	for _, pid := range processesUnder(d.dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[1], d.dir) {
			continue
		}
		_ = syscall.Unmount(f[1], syscall.MNT_DETACH)
		if !strings.HasSuffix(f[1], "/null-netns") && !d.tb.Failed() {
			d.tb.Errorf("left mounted: %s", f[1])
		}
	}
	if d.netns != "" {
		_ = exec.Command("ip", "netns", "del", d.netns).Run()
	}
	_ = os.RemoveAll(d.dir)
}

// processesUnder lists the PIDs whose command line mentions dir (shims and a containerd that
// outlived a failed run), never this process.
func processesUnder(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(dir)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeCtr removes a container that ctr started, with its task and snapshot.
func (d *benchDaemon) removeCtr(id string) {
	d.tb.Helper()
	if _, err := d.ctr(benchCtrNamespace, "tasks", "delete", "--force", id); err != nil && !strings.Contains(err.Error(), "not found") {
		d.tb.Errorf("remove ctr task %s: %v", id, err)
	}
	if _, err := d.ctr(benchCtrNamespace, "containers", "delete", id); err != nil {
		d.tb.Errorf("remove ctr container %s: %v", id, err)
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
	d.tb.Helper()
	var list struct {
		ResourceVersion string `json:"resourceVersion"`
	}
	if err := c.List(context.Background(), "workloads", &list); err != nil {
		d.tb.Fatal(err)
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
