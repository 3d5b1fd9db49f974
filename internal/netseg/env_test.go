package netseg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/netseg/nstest"
	"strata.dev/strata/internal/testenv"
)

// testEnv is one test's private world: a network namespace that plays the
// host (bridges and host veths are created there, never in the machine's
// own namespace) and temporary directories for namespaces and state.
type testEnv struct {
	t        testing.TB
	nsName   string
	ns       netns.NsHandle
	host     Host
	dir      string
	netnsDir string
	stateDir string
	last     *Manager // torn down when the test ends
}

// newTestEnv creates the environment, or skips the test when the machine
// cannot run it. When the test ends it tears down the last Manager
// (Cleanup, DeleteSegment), checks that the namespace holds no link but lo
// and that no mount is left, and deletes the namespace.
func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "needs root: the test creates network namespaces, bridges and veth pairs")
	}
	dir := t.TempDir() // removed last, after the checks below
	e := &testEnv{
		t:        t,
		nsName:   fmt.Sprintf("strata-test-%x", rand.Uint64()),
		dir:      dir,
		netnsDir: filepath.Join(dir, "netns"),
		stateDir: filepath.Join(dir, "state"),
	}
	ns, err := nstest.NewNamed(e.nsName)
	if err != nil {
		testenv.Skipf(t, "kernel cannot create a network namespace here: %v", err)
	}
	e.ns = ns
	e.host = NamespaceHost(ns)
	t.Cleanup(e.close)
	t.Cleanup(e.teardown)
	e.probe()
	return e
}

// probe skips the test when the kernel lacks veth pairs or bridges.
func (e *testEnv) probe() {
	e.t.Helper()
	h := e.netlink()
	defer h.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}, PeerName: "probe1"}
	if err := h.LinkAdd(veth); err != nil {
		testenv.Skipf(e.t, "kernel cannot create veth pairs: %v", err)
	}
	if err := h.LinkDel(veth); err != nil {
		e.t.Fatal(err)
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}}
	if err := h.LinkAdd(br); err != nil {
		testenv.Skipf(e.t, "kernel cannot create bridges: %v", err)
	}
	if err := h.LinkDel(br); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) netlink() *netlink.Handle {
	e.t.Helper()
	h, err := e.host.Netlink()
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// options are the Options of a Manager inside the environment.
func (e *testEnv) options() Options {
	return Options{
		StateDir: e.stateDir,
		NetNSDir: e.netnsDir,
		Host:     e.host,
		Logger:   testLogger(e.t),
	}
}

// manager returns a new Manager on the environment's directories; edit
// changes its options first.
func (e *testEnv) manager(edit func(*Options)) *Manager {
	e.t.Helper()
	o := e.options()
	if edit != nil {
		edit(&o)
	}
	m, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.last = m
	return m
}

// teardown removes everything through the last Manager, as the daemon
// would when every workload and segment is deleted.
func (e *testEnv) teardown() {
	if e.last == nil {
		return
	}
	ctx := context.Background()
	if err := e.last.Cleanup(ctx, func(string) bool { return false }); err != nil {
		e.t.Errorf("teardown: Cleanup: %v", err)
	}
	for _, s := range e.last.Segments() {
		if err := e.last.DeleteSegment(ctx, s.Name); err != nil {
			e.t.Errorf("teardown: %v", err)
		}
	}
}

// close checks that nothing is left and deletes the namespace.
func (e *testEnv) close() {
	t := e.t
	if h, err := e.host.Netlink(); err != nil {
		t.Errorf("netlink in test namespace: %v", err)
	} else {
		links, err := linkList(h)
		h.Close()
		if err != nil {
			t.Errorf("list links in test namespace: %v", err)
		}
		var left []string
		for _, l := range links {
			if l.Attrs().Name != "lo" {
				left = append(left, l.Type()+" "+l.Attrs().Name)
			}
		}
		if len(left) > 0 {
			t.Errorf("test namespace %s still holds links: %s", e.nsName, strings.Join(left, ", "))
		}
	}
	if files, err := os.ReadDir(e.netnsDir); err == nil && len(files) > 0 {
		t.Errorf("namespace files left in %s: %v", e.netnsDir, files)
	}
	if err := e.ns.Close(); err != nil {
		t.Errorf("close test namespace: %v", err)
	}
	if err := netns.DeleteNamed(e.nsName); err != nil {
		t.Errorf("delete test namespace %s: %v", e.nsName, err)
	}
	for _, m := range mounts(t) {
		if strings.HasPrefix(m, e.dir) || strings.Contains(m, e.nsName) {
			t.Errorf("mount left behind: %s", m)
		}
	}
}

// mounts lists the mount points of the test's mount namespace.
func mounts(t testing.TB) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 {
			out = append(out, fields[4])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// assertGone checks that a's veth, namespace file and mount are gone.
func (e *testEnv) assertGone(a Attachment) {
	e.t.Helper()
	h := e.netlink()
	defer h.Close()
	if l, err := linkByName(h, a.HostVeth); err != nil || l != nil {
		e.t.Errorf("veth %s of %s still there (%v)", a.HostVeth, a.Instance, err)
	}
	if _, err := os.Stat(a.NetNS); !errors.Is(err, os.ErrNotExist) {
		e.t.Errorf("namespace file %s of %s still there (%v)", a.NetNS, a.Instance, err)
	}
	if slices.Contains(mounts(e.t), a.NetNS) {
		e.t.Errorf("namespace of %s still mounted at %s", a.Instance, a.NetNS)
	}
}

// inHost runs f inside the test namespace.
func (e *testEnv) inHost(f func() error) error { return e.host.Do(f) }

// inInstance runs f inside the network namespace of a.
func inInstance(a Attachment) func(func() error) error {
	return func(f func() error) error {
		ns, err := netns.GetFromPath(a.NetNS)
		if err != nil {
			return err
		}
		defer ns.Close()
		return inNamespace(ns, f)
	}
}

// echoPort is where test servers listen.
const echoPort = 7007

// serveEcho listens on addr:echoPort inside a namespace (in runs a function
// there) and answers every connection with the address it came from.
func serveEcho(t testing.TB, in func(func() error) error, addr netip.Addr) {
	t.Helper()
	nstest.ServeTCP(t, in, netip.AddrPortFrom(addr, echoPort), nstest.RemoteIP)
}

// ask connects from inside a namespace to an echo server on addr and
// returns the source address the server saw.
func ask(in func(func() error) error, addr netip.Addr) (netip.Addr, error) {
	var c net.Conn
	err := in(func() error {
		var err error
		c, err = net.DialTimeout("tcp4", netip.AddrPortFrom(addr, echoPort).String(), 3*time.Second)
		return err
	})
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := io.ReadAll(c)
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.ParseAddr(strings.TrimSpace(string(line)))
}

// mustReach checks that a connection from `in` to addr arrives from want.
func mustReach(t testing.TB, from string, in func(func() error) error, addr, want netip.Addr) {
	t.Helper()
	got, err := ask(in, addr)
	if err != nil {
		t.Errorf("%s cannot reach %s: %v", from, addr, err)
		return
	}
	if got != want {
		t.Errorf("%s reached %s from %s, want from %s", from, addr, got, want)
	}
}

// netnsInode identifies the namespace mounted at path.
func netnsInode(t testing.TB, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// testLogger writes the manager's records to the test log with -v.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tlogWriter{t}, nil))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
