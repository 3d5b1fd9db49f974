package daemon_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	"strata.dev/strata/internal/daemon"
	"strata.dev/strata/internal/testenv"
	"strata.dev/strata/internal/testimage"
)

// The end-to-end test runs the real strata binary as a daemon, with its own containerd,
// inside a network namespace the test creates, and drives it through the CLI as a user
// would: apply, kill an instance's process, kill -9 the daemon, delete.

type e2e struct {
	t       testing.TB
	bin     string
	dir     string
	netns   string
	socket  string
	daemon  *exec.Cmd
	waitErr chan error
	// beforeStop, when set, removes what a user of the harness made beside strata.
	beforeStop func()
	// extraArgs are added to `strata serve`.
	extraArgs []string
	// ownRunDir leaves --netns-dir out: the daemon keeps its run-time files where it
	// derives them from its data dir.
	ownRunDir bool
}

func skipUnlessHost(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "the daemon end-to-end test needs root (containerd, network namespaces)")
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ip", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.Skipf(t, "%s not found: run `make host-setup`", bin)
		}
	}
}

func newE2E(t testing.TB) *e2e {
	skipUnlessHost(t)
	dir, err := os.MkdirTemp("", "strata-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	e := &e2e{t: t, dir: dir, socket: filepath.Join(dir, "strata.sock"), bin: filepath.Join(dir, "strata")}
	build := exec.Command("go", "build", "-o", e.bin, "strata.dev/strata/cmd/strata")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build strata: %v\n%s", err, out)
	}
	// strata-guest next to strata, where the daemon looks for it: image VMs need it,
	// and the daemon is not ready without it.
	build = exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "strata-guest"), "strata.dev/strata/cmd/strata-guest")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build strata-guest: %v\n%s", err, out)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	e.netns = "strata-e2e-" + hex.EncodeToString(suffix)
	if out, err := exec.Command("ip", "netns", "add", e.netns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	if out, err := exec.Command("ip", "-n", e.netns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("loopback up: %v\n%s", err, out)
	}
	t.Cleanup(e.cleanup)
	f, err := os.Create(filepath.Join(dir, "busybox.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if err := testimage.Build(f, "localhost/busybox:1"); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	return e
}

// start runs `strata serve` in the test's network namespace.
func (e *e2e) start() {
	e.t.Helper()
	// nsenter joins only the network namespace: `ip netns exec` would also remount /sys,
	// hiding the cgroup mounts runc needs.
	args := []string{"--net=/run/netns/" + e.netns, e.bin, "serve", "--data-dir", filepath.Join(e.dir, "data"),
		"--socket", e.socket, "--start-containerd", "--listen", tlsAddr}
	if !e.ownRunDir {
		args = append(args, "--netns-dir", filepath.Join(e.dir, "netns"))
	}
	if _, err := os.Stat("/opt/strata/bin/runsc"); err == nil {
		args = append(args, "--runsc", "/opt/strata/bin/runsc")
	}
	args = append(args, e.extraArgs...)
	cmd := exec.Command("nsenter", args...)
	logf, err := os.OpenFile(filepath.Join(e.dir, "serve.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.daemon = cmd
	e.waitErr = make(chan error, 1)
	go func() { e.waitErr <- cmd.Wait(); _ = logf.Close() }()
	e.eventually("the daemon answers", 60*time.Second, func() error {
		_, err := e.strata("get", "workloads")
		return err
	})
}

// kill9 kills the daemon as a crash would.
func (e *e2e) kill9() {
	e.t.Helper()
	// nsenter execs strata, so the PID is the daemon's.
	_ = e.daemon.Process.Signal(syscall.SIGKILL)
	if err := <-e.waitErr; err == nil {
		e.t.Log("the daemon exited cleanly although it was killed")
	}
	e.daemon = nil
}

// stop ends the daemon gracefully (it stops the containerd it started).
func (e *e2e) stop() {
	if e.daemon == nil {
		return
	}
	_ = e.daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-e.waitErr:
		if err != nil {
			e.t.Logf("daemon exited: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = e.daemon.Process.Kill()
		if err := <-e.waitErr; err != nil {
			e.t.Logf("daemon killed after 30s: %v", err)
		}
	}
	e.daemon = nil
}

func (e *e2e) strata(args ...string) (string, error) {
	return run(e.bin, append([]string{"--socket", e.socket}, args...)...)
}

// run runs a program and returns its standard output; an error carries its standard error.
func run(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (e *e2e) must(args ...string) string {
	e.t.Helper()
	out, err := e.strata(args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *e2e) eventually(what string, timeout time.Duration, check func() error) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(e.dir, "serve.log"))
	e.t.Fatalf("%s: not within %s: %v\ndaemon log (tail):\n%s", what, timeout, err, tail(string(log), 30))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (e *e2e) workload(name string) v1alpha1.Workload {
	e.t.Helper()
	var w v1alpha1.Workload
	if err := json.Unmarshal([]byte(e.must("get", "workload", name, "-o", "json")), &w); err != nil {
		e.t.Fatal(err)
	}
	return w
}

// running checks that a workload has n running instances and returns their PIDs by ID.
func (e *e2e) running(name string, n int) (map[string]int, error) {
	w := e.workload(name)
	pids := map[string]int{}
	if w.Status == nil {
		return nil, fmt.Errorf("no status")
	}
	for _, in := range w.Status.Instances {
		if in.State == "running" && in.PID > 0 {
			pids[in.ID] = in.PID
		}
	}
	if len(pids) != n || w.Status.Phase != v1alpha1.PhaseRunning {
		return pids, fmt.Errorf("phase %s, %d of %d running: %+v", w.Status.Phase, len(pids), n, w.Status.Instances)
	}
	return pids, nil
}

func (e *e2e) cleanup() {
	if e.daemon != nil {
		// Let the daemon remove whatever is left, as a user would.
		if out, err := e.strata("get", "workloads", "-o", "json"); err == nil {
			var list struct {
				Items []v1alpha1.Workload `json:"items"`
			}
			if json.Unmarshal([]byte(out), &list) == nil {
				for _, w := range list.Items {
					_, _ = e.strata("delete", "workload", w.Metadata.Name, "--timeout", "60s")
				}
			}
		}
		if e.beforeStop != nil {
			e.beforeStop()
		}
	}
	e.stop()
	// Whatever a failed run left (shims, a containerd): end it by PID, only what names our directory.
	for _, pid := range processesUnder(e.dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[1], e.dir) {
			continue
		}
		_ = syscall.Unmount(f[1], syscall.MNT_DETACH)
		// runsc keeps a null network namespace mounted in its state directory; a node VM
		// the test leaves to the harness keeps its share of volumes (nodevm/shares/<vm>).
		if !strings.HasSuffix(f[1], "/null-netns") && !strings.Contains(f[1], "/nodevm/shares/") && !e.t.Failed() {
			e.t.Errorf("left mounted: %s", f[1])
		}
	}
	_ = exec.Command("ip", "netns", "del", e.netns).Run()
	if e.ownRunDir {
		_ = os.RemoveAll(daemon.RunDirFor(filepath.Join(e.dir, "data")))
	}
	_ = os.RemoveAll(e.dir)
}

// tlsAddr is the daemon's TCP listener, on the loopback of the test's network namespace.
const tlsAddr = "127.0.0.1:17443"

const apps = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: web}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; echo web $HOSTNAME up; mkdir -p /www; echo ok > /www/index.html; httpd -f -p 8080 -h /www & wait"]
  replicas: 2
  resources: {cpu: 200m, memory: 64Mi}
`

const oomHog = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: hog}
spec:
  image: localhost/busybox:1
  command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"]
  resources: {memory: 32Mi}
  restartPolicy: Never
`

const sandboxed = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: untrusted}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; echo sandboxed; cat /proc/version; sleep 100000 & wait"]
  traits: {trust: untrusted}
`

func TestDaemonEndToEnd(t *testing.T) {
	e := newE2E(t)
	e.start()
	if out := e.must("image", "import", filepath.Join(e.dir, "busybox.tar")); !strings.Contains(out, "imported localhost/busybox:1") {
		t.Fatalf("image import: %s", out)
	}
	appFile := filepath.Join(e.dir, "apps.yaml")
	if err := os.WriteFile(appFile, []byte(apps), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := e.must("apply", "-f", appFile); out != "workload/web created\n" {
		t.Fatalf("apply: %q", out)
	}
	if out := e.must("apply", "-f", appFile); out != "workload/web unchanged\n" {
		t.Fatalf("second apply: %q", out)
	}
	var pids map[string]int
	e.eventually("web runs 2 instances", 60*time.Second, func() (err error) {
		pids, err = e.running("web", 2)
		return err
	})
	for id, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			t.Errorf("%s: pid %d is not a host process: %v", id, pid, err)
		}
	}
	w := e.workload("web")
	if w.Status.Tier != v1alpha1.TierContainer || w.Status.Instances[0].IP == "" {
		t.Errorf("tier %s, ip %q", w.Status.Tier, w.Status.Instances[0].IP)
	}

	// Instances reach each other on the default segment.
	e.eventually("web-1 reaches web-0's server", 30*time.Second, func() error {
		out, err := e.strata("exec", "web", "--instance", "web-1", "--", "wget", "-qO-", "http://"+w.Status.Instances[0].IP+":8080/")
		if err != nil || out != "ok\n" {
			return fmt.Errorf("%q, %w", out, err)
		}
		return nil
	})
	if logs := e.must("logs", "web"); !strings.HasPrefix(logs, "web web-0 up") {
		t.Errorf("logs: %q", logs)
	}

	// The TLS listener serves the same API to holders of a token, and nothing to others.
	tlsArgs := func(tokenFile string, args ...string) *exec.Cmd {
		base := []string{"--net=/run/netns/" + e.netns, e.bin, "--server", "https://" + tlsAddr,
			"--ca-file", filepath.Join(e.dir, "data", "tls", "ca.crt"), "--token-file", tokenFile}
		return exec.Command("nsenter", append(base, args...)...)
	}
	if out, err := tlsArgs(filepath.Join(e.dir, "data", "tls", "tokens"), "get", "workloads").CombinedOutput(); err != nil || !strings.Contains(string(out), "web") {
		t.Errorf("get over TLS with the admin token: %v\n%s", err, out)
	}
	bogus := filepath.Join(e.dir, "bogus-token")
	if err := os.WriteFile(bogus, []byte(strings.Repeat("0", 64)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := tlsArgs(bogus, "get", "workloads").CombinedOutput(); err == nil || !strings.Contains(string(out), "refused the token") {
		t.Errorf("get over TLS with a bogus token: %v\n%s", err, out)
	}

	// Kill an instance's main process: it is restarted, and the restart is counted.
	if err := syscall.Kill(pids["web-0"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.eventually("web-0 restarted", 60*time.Second, func() error {
		w := e.workload("web")
		in := w.Status.Instances[0]
		if in.Restarts != 1 || in.State != "running" || in.PID == pids["web-0"] {
			return fmt.Errorf("web-0: %+v", in)
		}
		if in.IP != w.Status.Instances[0].IP {
			return fmt.Errorf("web-0 came back on %s, not on its address %s", in.IP, w.Status.Instances[0].IP)
		}
		return nil
	})
	if ev := e.must("events"); !strings.Contains(ev, "Exited") || !strings.Contains(ev, "Restarted") {
		t.Errorf("events do not tell the exit and restart:\n%s", ev)
	}

	// Kill -9 the daemon: the instances keep running and are re-adopted, not duplicated.
	before, _ := e.running("web", 2)
	e.kill9()
	for id, pid := range before {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			t.Errorf("%s died with the daemon", id)
		}
	}
	e.start()
	time.Sleep(3 * time.Second) // a few reconcile rounds
	after, err := e.running("web", 2)
	if err != nil {
		t.Fatal(err)
	}
	for id, pid := range before {
		if after[id] != pid {
			t.Errorf("%s: pid %d after the restart, %d before: not re-adopted", id, after[id], pid)
		}
	}

	// The sandbox tier, when runsc is there.
	if _, err := os.Stat("/opt/strata/bin/runsc"); err == nil {
		sbFile := filepath.Join(e.dir, "sandboxed.yaml")
		if err := os.WriteFile(sbFile, []byte(sandboxed), 0o600); err != nil {
			t.Fatal(err)
		}
		e.must("apply", "-f", sbFile)
		e.eventually("the sandbox runs", 90*time.Second, func() error {
			_, err := e.running("untrusted", 1)
			return err
		})
		if tier := e.workload("untrusted").Status.Tier; tier != v1alpha1.TierSandbox {
			t.Errorf("untrusted runs at %s", tier)
		}
		// gVisor's kernel is not the host's. (Its dmesg would say so by name, but the
		// sandbox's seccomp profile denies syslog(2), as a container's does.)
		host, err := os.ReadFile("/proc/version")
		if err != nil {
			t.Fatal(err)
		}
		e.eventually("the sandbox's log", 30*time.Second, func() error {
			logs, _ := e.strata("logs", "untrusted")
			if !strings.Contains(logs, "Linux version") || strings.Contains(logs, strings.TrimSpace(string(host))) {
				return fmt.Errorf("logs %q do not show a kernel other than the host's", logs)
			}
			return nil
		})
		// A killed sandbox comes back on the same address, its network namespace repaired
		// (runsc strips the address when it exits).
		sb := e.workload("untrusted").Status.Instances[0]
		if err := syscall.Kill(sb.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		e.eventually("the sandbox restarted", 90*time.Second, func() error {
			in := e.workload("untrusted").Status.Instances[0]
			if in.Restarts != 1 || in.State != "running" || in.IP != sb.IP {
				return fmt.Errorf("untrusted-0: %+v (was %s)", in, sb.IP)
			}
			return nil
		})
		e.eventually("the restarted sandbox is reachable", 30*time.Second, func() error {
			out, err := e.strata("exec", "untrusted", "--", "wget", "-qO-", "http://"+w.Status.Instances[1].IP+":8080/")
			if err != nil || out != "ok\n" {
				return fmt.Errorf("sandbox -> web-1: %q, %w", out, err)
			}
			return nil
		})
		e.must("delete", "workload", "untrusted")
	} else {
		t.Log("runsc not installed at /opt/strata/bin/runsc: the sandbox tier is not exercised (make host-setup builds it)")
	}

	// A process over its memory limit is OOM-killed, and the status and events say so.
	oomFile := filepath.Join(e.dir, "oom.yaml")
	if err := os.WriteFile(oomFile, []byte(oomHog), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", oomFile)
	e.eventually("the hog is OOM-killed", 60*time.Second, func() error {
		w := e.workload("hog")
		if len(w.Status.Instances) != 1 || w.Status.Instances[0].State != "exited" || !strings.Contains(w.Status.Instances[0].Message, "memory limit") {
			return fmt.Errorf("instances %+v", w.Status.Instances)
		}
		if ev := e.must("events"); !strings.Contains(ev, "OOMKilled") {
			return fmt.Errorf("no OOMKilled event yet:\n%s", ev)
		}
		return nil
	})
	e.must("delete", "workload", "hog")

	// Delete: every instance goes, with its network namespace.
	e.must("delete", "-f", appFile)
	e.eventually("nothing left", 90*time.Second, func() error {
		entries, _ := os.ReadDir(filepath.Join(e.dir, "netns"))
		if len(entries) > 0 {
			return fmt.Errorf("%d network namespaces left", len(entries))
		}
		out, err := exec.Command("pgrep", "-f", "containerd-shim-runc-v2 -namespace strata").Output()
		if err == nil && strings.TrimSpace(string(out)) != "" && shimsOf(e.dir) > 0 {
			return fmt.Errorf("%d shims left", shimsOf(e.dir))
		}
		return nil
	})
	e.stop()
}

// shimsOf counts the shims of the containerd under dir.
func shimsOf(dir string) int {
	n := 0
	for _, pid := range processesUnder(dir) {
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && bytes.Contains(cmdline, []byte("containerd-shim")) {
			n++
		}
	}
	return n
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
