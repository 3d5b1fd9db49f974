package containerd_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
)

// env is the private containerd the tests run against, started by TestMain.
var env struct {
	skip      string // why the integration tests cannot run here; "" if they can
	dir       string // temporary directory holding everything
	address   string // containerd's socket
	namespace string // the driver's namespace
	stateDir  string // the driver's StateDir
	runsc     string // runsc path; "" when absent
	noRunsc   string // why the sandbox tier is skipped
}

const runscDefault = "/opt/strata/bin/runsc"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	env.skip = prerequisites()
	if env.skip != "" {
		return m.Run()
	}
	env.runsc = os.Getenv("STRATA_RUNSC")
	if env.runsc == "" {
		env.runsc = runscDefault
	}
	if _, err := os.Stat(env.runsc); err != nil {
		env.noRunsc = fmt.Sprintf("runsc not found at %s (set STRATA_RUNSC, or run `make host-setup` to build it)", env.runsc)
		env.runsc = ""
	}
	_, runDirErr := os.Stat("/run/containerd")
	hadRunDir := runDirErr == nil
	sockets := shimSockets()

	dir, err := os.MkdirTemp("", "strata-ctrd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "containerd tests:", err)
		return 1
	}
	env.dir = dir
	env.address = filepath.Join(dir, "containerd.sock")
	env.namespace = fmt.Sprintf("strata-test-%d", os.Getpid())
	env.stateDir = filepath.Join(dir, "strata")
	proc, err := startContainerd(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "containerd tests: start containerd:", err)
		_ = os.RemoveAll(dir)
		return 1
	}
	// Clean up on interruption too; a closed output pipe must not kill
	// the run before its teardown.
	signal.Ignore(syscall.SIGPIPE)
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-interrupted
		fmt.Fprintf(os.Stderr, "containerd tests: %v: tearing down\n", sig)
		_ = teardown(proc, hadRunDir, sockets)
		os.Exit(1)
	}()
	code := m.Run()
	signal.Stop(interrupted)
	if err := teardown(proc, hadRunDir, sockets); err != nil {
		fmt.Fprintln(os.Stderr, "containerd tests: teardown:", err)
		code = 1
	}
	return code
}

// prerequisites says why the integration tests cannot run, or "".
func prerequisites() string {
	if os.Geteuid() != 0 {
		return "containerd integration tests need root"
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Sprintf("%s not found: install containerd and runc (`make host-setup`)", bin)
		}
	}
	return ""
}

// needContainerd skips t when the integration tests cannot run.
func needContainerd(t testing.TB) {
	t.Helper()
	if env.skip != "" {
		t.Skip("skipping: " + env.skip)
	}
}

// startContainerd starts a private containerd with everything under dir and
// waits until it answers.
func startContainerd(dir string) (*os.Process, error) {
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = %[3]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), env.address, filepath.Join(dir, "opt"))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command("containerd", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("containerd exited: %w (log: %s)", err, filepath.Join(dir, "containerd.log"))
		default:
		}
		if c, err := ctr.New(env.address, ctr.WithTimeout(time.Second)); err == nil {
			_, verr := c.Version(context.Background())
			c.Close()
			if verr == nil {
				return cmd.Process, nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return nil, fmt.Errorf("containerd did not answer within 30 s (log: %s)", filepath.Join(dir, "containerd.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// teardown removes whatever the tests left in containerd, stops it, kills
// stray processes of the test namespace, unmounts and deletes the directory,
// and reports anything it could not clean.
func teardown(proc *os.Process, hadRunDir bool, socketsBefore map[string]bool) error {
	var problems []string
	ctx := namespaces.WithNamespace(context.Background(), env.namespace)
	if c, err := ctr.New(env.address, ctr.WithTimeout(5*time.Second)); err == nil {
		cs, _ := c.Containers(ctx)
		for _, cont := range cs {
			problems = append(problems, "container left by a test: "+cont.ID())
			if task, err := cont.Task(ctx, nil); err == nil {
				_, _ = task.Delete(ctx, ctr.WithProcessKill)
			}
			_ = cont.Delete(ctx, ctr.WithSnapshotCleanup)
		}
		c.Close()
	}
	_ = proc.Signal(syscall.SIGTERM)
	if !waitGone(proc.Pid, 10*time.Second) {
		_ = proc.Kill()
		waitGone(proc.Pid, 5*time.Second)
	}
	for _, pid := range strays() {
		problems = append(problems, fmt.Sprintf("stray process %d killed", pid))
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, 5*time.Second)
	}
	for _, mnt := range mountsUnder(env.dir) {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			problems = append(problems, fmt.Sprintf("unmount %s: %v", mnt, err))
		}
	}
	removeCgroups()
	removeStaleSockets(socketsBefore)
	if !hadRunDir {
		// containerd 1.6 creates these even with a private state dir.
		for _, d := range []string{"/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc", "/run/containerd"} {
			_ = os.Remove(d)
		}
	}
	if err := os.RemoveAll(env.dir); err != nil {
		problems = append(problems, err.Error())
	}
	if left := mountsUnder(env.dir); len(left) > 0 {
		problems = append(problems, "mounts left: "+strings.Join(left, ", "))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// waitGone waits until process pid has disappeared (it is not our child,
// so /proc tells).
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// strays lists processes that belong to the tests: whose command line names
// the test directory (shims, runsc) or whose cgroup is in the test
// namespace (container processes).
func strays() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		cgroup, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if strings.Contains(string(cmdline), env.dir) || strings.Contains(string(cgroup), "/"+env.namespace+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// mountsUnder lists mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}

// removeCgroups removes the (empty) cgroups of the test namespace in every
// hierarchy.
func removeCgroups() {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, root := range roots {
		nsDir := filepath.Join(root, env.namespace)
		children, _ := os.ReadDir(nsDir)
		for _, c := range children {
			if c.IsDir() {
				_ = os.Remove(filepath.Join(nsDir, c.Name()))
			}
		}
		_ = os.Remove(nsDir)
	}
}

// shimSocketDir is where containerd 1.6 puts its shims' sockets, whatever
// its configuration says.
const shimSocketDir = "/run/containerd/s"

// shimSockets lists the entries of shimSocketDir.
func shimSockets() map[string]bool {
	names := map[string]bool{}
	entries, _ := os.ReadDir(shimSocketDir)
	for _, e := range entries {
		names[e.Name()] = true
	}
	return names
}

// removeStaleSockets removes the shim sockets that appeared during the run
// and that nothing listens on any more (a shim that was killed leaves its
// socket behind).
func removeStaleSockets(before map[string]bool) {
	for name := range shimSockets() {
		if before[name] {
			continue
		}
		p := filepath.Join(shimSocketDir, name)
		conn, err := net.Dial("unix", p)
		if err == nil {
			conn.Close()
			continue
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			_ = os.Remove(p)
		}
	}
}
