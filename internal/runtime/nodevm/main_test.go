package nodevm_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/containerd"
	"strata.dev/strata/internal/runtime/containerd/ctrdtest"
	"strata.dev/strata/internal/runtime/nodevm"
	"strata.dev/strata/internal/runtime/qemu"
	"strata.dev/strata/internal/testenv"
	"strata.dev/strata/internal/testimage"
)

// env is the private containerd that holds the images.
var env ctrdtest.Env

// guestInit is strata-guest built for the tests; "" when it could not be built.
var guestInit, noGuestInit string

// guestCache holds the node initramfs every driver of the tests shares: built
// once (minutes under the race detector), not once per test.
var guestCache string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "strata-nodevm-guest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	guestInit = filepath.Join(dir, "strata-guest")
	guestCache = filepath.Join(dir, "node-initramfs")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", guestInit, "strata.dev/strata/cmd/strata-guest")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		guestInit, noGuestInit = "", fmt.Sprintf("build strata-guest: %v: %s", err, out)
	}
	return env.Main(m, "strata-nodevm-")
}

// setup is what a node VM test needs: a containerd driver holding the
// busybox test image, and the directories the qemu and nodevm drivers keep
// their state in.
type setup struct {
	images *containerd.Driver
	image  string
	qemu   string // the qemu driver's state directory
	state  string // the nodevm driver's
	probe  string // the accelerator probe's cache
	tools  guest.NodeTools
	tiers  []v1alpha1.Tier // the nodevm drivers' (default: theirs)
	// containerRuntime is the nodevm drivers' Config.ContainerRuntime
	// (default: crun).
	containerRuntime string
	// q is the qemu driver every nodevm driver of the test boots its node
	// VMs with, as in one daemon: a guest agent talks to one connection at
	// a time, so a second qemu driver value would wait for the first one's.
	q *qemu.Driver
}

// needNodeVMs skips t unless node VMs can run here.
func needNodeVMs(t testing.TB) setup {
	t.Helper()
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.Skipf(t, "skipping: %s not found (install qemu-system-x86 and qemu-utils: `make host-setup`)", bin)
		}
	}
	if _, err := guest.FindKernel(kernelDir()); err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
	if guestInit == "" {
		t.Fatal(noGuestInit)
	}
	tools := guest.DefaultNodeTools()
	if _, err := os.Stat(tools.Crun); err != nil {
		testenv.Skipf(t, "skipping: no crun on the host (%v); make host-setup installs it", err)
	}
	images := env.NewDriver(t)
	var buf bytes.Buffer
	if err := testimage.Build(&buf, "localhost/strata/nodevmtest:1"); err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
	refs, err := images.ImportImage(t.Context(), &buf)
	if err != nil || len(refs) != 1 {
		t.Fatalf("import the test image: %v %v", refs, err)
	}
	dir := t.TempDir()
	s := setup{
		images: images, image: refs[0], tools: tools,
		qemu: filepath.Join(dir, "qemu"), state: filepath.Join(dir, "nodevm"), probe: filepath.Join(dir, "accel.json"),
	}
	s.q = s.qemuDriver(t, nil)
	return s
}

// kernelDir is where the tests look for the guest kernel: $STRATA_GUEST_KERNEL_DIR,
// else, as the daemon does, strata's own kernel where `make host-setup` built it,
// and Debian's cloud kernel where it did not.
func kernelDir() string {
	if dir := os.Getenv("STRATA_GUEST_KERNEL_DIR"); dir != "" {
		return dir
	}
	if _, err := guest.FindKernel(guest.StrataKernelDir); err == nil {
		return guest.StrataKernelDir
	}
	return guest.DefaultKernelDir
}

// qemuDriver returns a qemu driver over the setup's state, closed when t
// ends; adjust, when not nil, changes its configuration first.
func (s setup) qemuDriver(t testing.TB, adjust func(*qemu.Config)) *qemu.Driver {
	t.Helper()
	cfg := qemu.Config{StateDir: s.qemu, Images: s.images, GuestInit: guestInit, KernelDir: kernelDir(), ProbeCache: s.probe}
	if adjust != nil {
		adjust(&cfg)
	}
	q, err := qemu.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// driver returns a new nodevm driver over the setup's state.
func (s setup) driver(t testing.TB) *nodevm.Driver {
	t.Helper()
	d, err := nodevm.New(t.Context(), nodevm.Config{
		QEMU: s.q, StateDir: s.state, GuestCacheDir: guestCache, Tools: s.tools, Tiers: s.tiers, Ports: 4,
		NodeShape: nodevm.Shape{CPUMilli: 2000, MemoryBytes: 1 << 30}, ContainerRuntime: s.containerRuntime,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// removeNodeVMs stops and removes every node VM in the setup's qemu state
// when t ends.
func (s setup) removeNodeVMs(t testing.TB) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		q, err := qemu.New(ctx, qemu.Config{StateDir: s.qemu, GuestInit: guestInit, KernelDir: kernelDir(), ProbeCache: s.probe})
		if err != nil {
			t.Errorf("clean up node VMs: %v", err)
			return
		}
		defer q.Close()
		list, err := q.List(ctx)
		if err != nil {
			t.Errorf("clean up node VMs: %v", err)
		}
		for _, st := range list {
			_ = q.Stop(ctx, st.ID, 0)
			if err := q.Remove(ctx, st.ID); err != nil {
				t.Errorf("clean up node VM %s: %v", st.ID, err)
			}
		}
		// The node VMs' shares of mounts (and binds left in them), which the
		// driver removes with an empty node VM: deepest first.
		mounted := mountsBelow(t, s.state)
		slices.SortFunc(mounted, func(a, b string) int { return len(b) - len(a) })
		for _, m := range mounted {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
				t.Errorf("clean up: unmount %s: %v", m, err)
			}
		}
	})
}

var (
	_ runtime.Execer      = (*nodevm.Driver)(nil)
	_ runtime.EventSource = (*nodevm.Driver)(nil)
)
