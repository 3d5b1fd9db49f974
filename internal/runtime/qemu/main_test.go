package qemu_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/containerd"
	"strata.dev/strata/internal/runtime/containerd/ctrdtest"
	"strata.dev/strata/internal/runtime/qemu"
	"strata.dev/strata/internal/testenv"
	"strata.dev/strata/internal/testimage"
)

// env is the private containerd that image VMs take their images from.
var env ctrdtest.Env

// guestInit is strata-guest built for the tests; "" when it could not be built.
var guestInit, noGuestInit string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "strata-qemu-guest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	guestInit = filepath.Join(dir, "strata-guest")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", guestInit, "strata.dev/strata/cmd/strata-guest")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		guestInit, noGuestInit = "", fmt.Sprintf("build strata-guest: %v: %s", err, out)
	}
	return env.Main(m, "strata-qemu-")
}

// imageEnv is what an image VM test needs: a containerd driver holding the
// test image, the guest kernel and init.
type imageEnv struct {
	images *containerd.Driver
	image  string
	kernel guest.Kernel
}

// needImageVMs skips t unless image VMs can run here, and returns their setup.
func needImageVMs(t testing.TB) imageEnv {
	t.Helper()
	needQEMU(t)
	k := guestKernel(t)
	if guestInit == "" {
		t.Fatal(noGuestInit)
	}
	images := env.NewDriver(t)
	var buf bytes.Buffer
	if err := testimage.Build(&buf, "localhost/strata/vmtest:1"); err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
	refs, err := images.ImportImage(t.Context(), &buf)
	if err != nil || len(refs) != 1 {
		t.Fatalf("import the test image: %v %v", refs, err)
	}
	return imageEnv{images: images, image: refs[0], kernel: k}
}

// driver returns a qemu driver for image VMs over stateDir.
func (e imageEnv) driver(t testing.TB, stateDir string) *qemu.Driver {
	t.Helper()
	d, err := qemu.New(t.Context(), qemu.Config{
		StateDir: stateDir, Images: e.images, GuestInit: guestInit,
		KernelDir: kernelDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

var _ runtime.Execer = (*qemu.Driver)(nil)
