// Package ctrdtest is test support, not part of strata proper: it starts a
// private containerd for a test binary, the same way for every package whose
// tests need one (the containerd driver's, and drivers that boot from
// containerd's images), and removes every trace of it afterwards.
//
// Terms:
//
//   - the test directory (Env.Dir) is a fresh directory under os.TempDir that
//     holds everything: containerd's configuration, root, state and socket,
//     and the driver's StateDir;
//   - the test namespace (Env.Namespace) is the containerd namespace the
//     tests' drivers own; it is named after the test directory, so two test
//     binaries running at once never share one;
//   - a stray is a process left when containerd has stopped: one whose
//     command line names a path inside the test directory (a shim, runsc) or
//     whose cgroup lies in the test namespace (a container's process);
//   - leftovers are what the tests should have removed and did not:
//     containers, leases, snapshots that are not committed layers, and
//     image views still mounted (under StateDir/views, where the driver
//     mounts them; runsc's own mounts elsewhere in StateDir belong to runsc).
//
// A test binary starts the containerd once, in TestMain:
//
//	var env ctrdtest.Env
//
//	func TestMain(m *testing.M) { os.Exit(env.Main(m, "strata-ctrd-")) }
//
// and each test that needs it calls env.Need(t) (or env.NewDriver(t), which
// does). When the host cannot run containerd (not root, binaries missing),
// Main still runs the tests and Need skips them, saying why. Teardown, at the
// end or on SIGINT/SIGTERM, removes the leftovers, stops containerd, kills
// strays, unmounts and deletes the test directory, and fails the run if the
// tests left anything behind.
package ctrdtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/containerd/identifiers"

	"strata.dev/strata/internal/runtime/containerd"
	"strata.dev/strata/internal/testenv"
	"strata.dev/strata/internal/testmain"
)

// RunscDefault is where runsc is looked for when STRATA_RUNSC is not set
// (`make host-setup` builds it there).
const RunscDefault = "/opt/strata/bin/runsc"

// Env is a private containerd and what the tests need to use it. Start (or
// Main) fills it.
type Env struct {
	Dir       string // the test directory: holds everything
	Address   string // containerd's socket
	Namespace string // the test namespace, for the tests' drivers
	StateDir  string // the containerd driver's Config.StateDir (inside Dir)
	Runsc     string // gVisor's runsc for the sandbox tier; "" when not found
	NoRunsc   string // why Runsc is "" (for t.Skip); "" when it is set
	// Skip says why the host cannot run containerd for the tests; Main sets
	// it instead of starting one, and Need skips with it.
	Skip string

	run *running // the started containerd; nil before Start
}

// running is what Teardown needs of a started containerd.
type running struct {
	proc      *os.Process
	hadRunDir bool            // /run/containerd existed before the start
	sockets   map[string]bool // shim sockets that existed before the start

	once sync.Once
	err  error
}

// Prerequisites says why this host cannot run the private containerd, or ""
// when it can.
func Prerequisites() string {
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

// Start starts a private containerd in a new test directory whose name
// begins with prefix (letters, digits and '-', such as "strata-ctrd-"), and
// waits until it answers. The caller must call Teardown. Check
// Prerequisites first: Start fails where they are not met.
func Start(prefix string) (*Env, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, fmt.Errorf("containerd test harness: %w", err)
	}
	e := &Env{
		Dir:       dir,
		Address:   filepath.Join(dir, "containerd.sock"),
		Namespace: filepath.Base(dir),
		StateDir:  filepath.Join(dir, "strata"),
	}
	if err := identifiers.Validate(e.Namespace); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("containerd test harness: prefix %q does not make a containerd namespace: %w", prefix, err)
	}
	e.Runsc, e.NoRunsc = findRunsc()
	_, runDirErr := os.Stat("/run/containerd")
	r := &running{hadRunDir: runDirErr == nil, sockets: shimSockets()}
	r.proc, err = startContainerd(e)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("containerd test harness: start containerd: %w", err)
	}
	e.run = r
	return e, nil
}

// findRunsc returns runsc's path from STRATA_RUNSC or RunscDefault, or why
// there is none.
func findRunsc() (path, why string) {
	path = os.Getenv("STRATA_RUNSC")
	if path == "" {
		path = RunscDefault
	}
	if _, err := os.Stat(path); err != nil { //nolint:gosec // G703: STRATA_RUNSC names the runsc to test, by design
		return "", fmt.Sprintf("runsc not found at %s (set STRATA_RUNSC, or run `make host-setup` to build it)", path)
	}
	return path, ""
}

// Main is TestMain's work: it fills e (with Skip set when Prerequisites
// fail, in which case no containerd starts), runs the tests, tears down,
// and returns the exit code for os.Exit. A SIGINT or SIGTERM tears down
// before the process exits. A teardown that finds leftovers fails the run.
func (e *Env) Main(m *testing.M, prefix string) int {
	if why := Prerequisites(); why != "" {
		*e = Env{Skip: why}
		return m.Run()
	}
	started, err := Start(prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*e = *started
	return testmain.Run(m, "containerd test harness", e.Teardown)
}

// Teardown removes the leftovers, stops containerd, kills strays, unmounts
// and deletes the test directory. It reports everything it found left or
// could not clean; calling it again returns the same result.
func (e *Env) Teardown() error {
	if e.run == nil {
		return nil
	}
	e.run.once.Do(func() { e.run.err = e.teardown() })
	return e.run.err
}

// Need skips t when the host cannot run the private containerd, and fails
// it when Main or Start has not run.
func (e *Env) Need(t testing.TB) {
	t.Helper()
	if e.Skip != "" {
		testenv.Skipf(t, "%s", "skipping: "+e.Skip)
	}
	if e.Address == "" {
		t.Fatal("no private containerd: call Env.Main from TestMain (or Start)")
	}
}

// Config returns a containerd driver configuration for the private
// containerd: its socket, the test namespace, the StateDir and runsc.
func (e *Env) Config() containerd.Config {
	return containerd.Config{
		Address:   e.Address,
		Namespace: e.Namespace,
		StateDir:  e.StateDir,
		Runsc:     e.Runsc,
	}
}

// NewDriver returns a containerd driver on the private containerd (after
// Need), closed when t ends.
func (e *Env) NewDriver(t testing.TB) *containerd.Driver {
	t.Helper()
	e.Need(t)
	d, err := containerd.New(context.Background(), e.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// Client returns a containerd client for the test namespace (after Need),
// closed when t ends: for looking behind a driver's back.
func (e *Env) Client(t testing.TB) *ctr.Client {
	t.Helper()
	e.Need(t)
	c, err := e.client(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// viewsDir is where the containerd driver mounts image views
// (containerd.Config.StateDir).
func (e *Env) viewsDir() string { return filepath.Join(e.StateDir, "views") }

func (e *Env) client(timeout time.Duration) (*ctr.Client, error) {
	c, err := ctr.New(e.Address, ctr.WithDefaultNamespace(e.Namespace), ctr.WithTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("connect to the private containerd: %w", err)
	}
	return c, nil
}

// teardown does Teardown's work once.
func (e *Env) teardown() error {
	var problems []string
	if c, err := e.client(5 * time.Second); err == nil {
		problems = append(problems, removeLeftovers(context.Background(), c)...)
		c.Close()
	} else {
		problems = append(problems, err.Error())
	}
	for _, mnt := range mountsUnder(e.viewsDir()) {
		problems = append(problems, "mount left by a test: "+mnt)
	}

	proc := e.run.proc
	_ = proc.Signal(syscall.SIGTERM)
	if !waitGone(proc.Pid, 10*time.Second) {
		_ = proc.Kill()
		waitGone(proc.Pid, 5*time.Second)
	}
	for _, pid := range e.strays() {
		problems = append(problems, fmt.Sprintf("stray process %d killed", pid))
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, 5*time.Second)
	}
	for _, mnt := range mountsUnder(e.Dir) {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			problems = append(problems, fmt.Sprintf("unmount %s: %v", mnt, err))
		}
	}
	removeCgroups(e.Namespace)
	removeStaleSockets(e.run.sockets)
	if !e.run.hadRunDir {
		// containerd 1.6 creates these even with a private state dir.
		for _, d := range []string{"/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc", "/run/containerd"} {
			_ = os.Remove(d)
		}
	}
	if err := os.RemoveAll(e.Dir); err != nil {
		problems = append(problems, err.Error())
	}
	if left := mountsUnder(e.Dir); len(left) > 0 {
		problems = append(problems, "mounts left: "+strings.Join(left, ", "))
	}
	if len(problems) > 0 {
		return errors.New("containerd test harness: teardown: " + strings.Join(problems, "; "))
	}
	return nil
}
