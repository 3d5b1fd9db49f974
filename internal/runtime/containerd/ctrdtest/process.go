package ctrdtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	ctr "github.com/containerd/containerd"
)

// startContainerd starts a private containerd with everything under e.Dir
// and waits until it answers.
func startContainerd(e *Env) (*os.Process, error) {
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = %[3]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
`, filepath.Join(e.Dir, "root"), filepath.Join(e.Dir, "state"), e.Address, filepath.Join(e.Dir, "opt"))
	cfgPath := filepath.Join(e.Dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(e.Dir, "containerd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command("containerd", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a ^C to the test binary does not reach it
	// before the teardown does.
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
			return nil, fmt.Errorf("containerd exited: %w (log: %s)", err, logPath)
		default:
		}
		if c, err := ctr.New(e.Address, ctr.WithTimeout(time.Second)); err == nil {
			_, verr := c.Version(context.Background())
			c.Close()
			if verr == nil {
				return cmd.Process, nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			werr := <-exited
			return nil, fmt.Errorf("containerd did not answer within 30 s and was killed (%w) (log: %s)", werr, logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitGone waits until process pid has disappeared (it need not be our
// child, so /proc tells).
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

// strays lists the processes that belong to the tests (see the package
// documentation), other than this one. Paths are matched with their
// trailing slash so that another test directory whose name merely begins
// with this one's ("/tmp/strata-ctrd-12" and "/tmp/strata-ctrd-123") does
// not match.
func (e *Env) strays() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	inDir := e.Dir + "/"
	inNamespace := "/" + e.Namespace + "/"
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		cgroup, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if strings.Contains(string(cmdline), inDir) || strings.Contains(string(cgroup), inNamespace) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// mountsUnder lists the mount points at or under dir in this process's
// mount namespace, deepest first.
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

// removeCgroups removes the (empty) cgroups of namespace ns in every
// hierarchy.
func removeCgroups(ns string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, root := range roots {
		nsDir := filepath.Join(root, ns)
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
