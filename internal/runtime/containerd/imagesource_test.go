package containerd_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/snapshots"

	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/containerd"
	"strata.dev/strata/internal/runtime/containerd/ctrdtest"
	"strata.dev/strata/internal/testimage"
)

// layout is what the test image's OCI layout says of itself: the digests
// ResolveImage must report.
type layout struct {
	manifest string // the manifest's digest
	diffID   string // the one layer's digest; it is uncompressed, so also its diff ID
}

// readLayout builds the test image as ref and reads its manifest digest and
// layer digest from the tarball.
func readLayout(t *testing.T, ref string) layout {
	t.Helper()
	var buf bytes.Buffer
	if err := testimage.Build(&buf, ref); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v (%d manifests)", err, len(index.Manifests))
	}
	l := layout{manifest: index.Manifests[0].Digest}
	var manifest struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.Unmarshal(files["blobs/sha256/"+strings.TrimPrefix(l.manifest, "sha256:")], &manifest); err != nil || len(manifest.Layers) != 1 {
		t.Fatalf("manifest: %v (%d layers)", err, len(manifest.Layers))
	}
	l.diffID = manifest.Layers[0].Digest
	return l
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func TestResolveImage(t *testing.T) {
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	want := readLayout(t, image)
	ctx := context.Background()

	got, err := d.ResolveImage(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	if !digestRE.MatchString(got.Digest) || !digestRE.MatchString(got.ChainID) {
		t.Errorf("digest %q, chain ID %q: want sha256:<64 hex digits>", got.Digest, got.ChainID)
	}
	if got.Ref != image || got.Digest != want.manifest {
		t.Errorf("ref %q, digest %q; want %q, %q", got.Ref, got.Digest, image, want.manifest)
	}
	// The chain ID of a single layer is its diff ID.
	if got.ChainID != want.diffID {
		t.Errorf("chain ID %q, want the layer's diff ID %q", got.ChainID, want.diffID)
	}
	if len(got.Entrypoint) != 0 || !slices.Equal(got.Cmd, testimage.DefaultCmd) {
		t.Errorf("entrypoint %q, cmd %q; want none, %q", got.Entrypoint, got.Cmd, testimage.DefaultCmd)
	}
	wantEnv := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if !slices.Equal(got.Env, wantEnv) || got.WorkingDir != "/" || got.User != "" {
		t.Errorf("env %q, working dir %q, user %q; want %q, \"/\", \"\"", got.Env, got.WorkingDir, got.User, wantEnv)
	}

	// A reference that normalises to the same name finds the same image.
	short, err := d.ResolveImage(ctx, strings.TrimSuffix(image, ":1")+":1")
	if err != nil || short.Digest != got.Digest {
		t.Errorf("resolve again: %+v, %v", short, err)
	}
	_, err = d.ResolveImage(ctx, "localhost/strata/not-imported:1")
	if !errors.Is(err, runtime.ErrImageNotFound) {
		t.Errorf("unknown image: %v, want ErrImageNotFound", err)
	}
}

// TestResolveImageUnpacks: an image whose layers are gone from the
// snapshotter is unpacked again.
func TestResolveImageUnpacks(t *testing.T) {
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	ctx := context.Background()
	info, err := d.ResolveImage(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	sn := env.Client(t).SnapshotService(containerd.DefaultSnapshotter)
	if err := sn.Remove(ctx, info.ChainID); err != nil {
		t.Fatalf("remove the image's layer snapshot: %v", err)
	}
	if _, err := d.ResolveImage(ctx, image); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Stat(ctx, info.ChainID); err != nil {
		t.Errorf("layer snapshot after ResolveImage: %v", err)
	}
}

// mountOptions returns the per-mount options of the mount point path in
// this process's mount namespace, and whether it is one.
func mountOptions(t *testing.T, path string) (string, bool) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 5 && fields[4] == path {
			return fields[5], true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return "", false
}

// views lists the views' snapshots and leases in the test namespace.
func views(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	c := env.Client(t)
	var out []string
	err := c.SnapshotService(containerd.DefaultSnapshotter).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if strings.HasPrefix(info.Name, containerd.ViewPrefix) {
			out = append(out, fmt.Sprintf("%s snapshot %s", info.Kind, info.Name))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := c.LeasesService().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if strings.HasPrefix(l.ID, containerd.ViewPrefix) {
			out = append(out, "lease "+l.ID)
		}
	}
	return out
}

// checkGone fails t if the view at root, or any other, is left: its mount,
// its mount point, its snapshot, its lease, its lock file.
func checkGone(t *testing.T, root string) {
	t.Helper()
	if _, mounted := mountOptions(t, root); mounted {
		t.Errorf("%s is still mounted", root)
	}
	if _, err := os.Lstat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount point %s: %v, want it gone", root, err)
	}
	if v := views(t); len(v) > 0 {
		t.Errorf("views left: %q", v)
	}
	files, _ := os.ReadDir(filepath.Join(env.StateDir, "views"))
	for _, f := range files {
		t.Errorf("file left in the views directory: %s", f.Name())
	}
	left, err := env.Leftovers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("leftovers: %q", left)
	}
}

// checkRoot fails t unless root holds the test image's files, read-only.
func checkRoot(t *testing.T, root string) {
	t.Helper()
	want, err := os.Stat(testimage.Busybox)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "bin", "busybox"))
	if err != nil {
		t.Fatalf("the image root has no busybox: %v", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != want.Size() {
		t.Errorf("bin/busybox: %v, %d bytes; want a regular file of %d bytes", fi.Mode(), fi.Size(), want.Size())
	}
	if link, err := os.Readlink(filepath.Join(root, "bin", "sh")); err != nil || link != "busybox" {
		t.Errorf("bin/sh -> %q, %v; want -> busybox", link, err)
	}
	err = os.WriteFile(filepath.Join(root, "tmp", "x"), nil, 0o600)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("writing into the image root: %v, want EROFS", err)
	}
	opts, mounted := mountOptions(t, root)
	if !mounted || !slices.Contains(strings.Split(opts, ","), "ro") {
		t.Errorf("%s: mounted %v with %q, want read-only", root, mounted, opts)
	}
}

func TestWithImageRoot(t *testing.T) {
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	var seen string
	err := d.WithImageRoot(context.Background(), image, func(root string) error {
		seen = root
		if !strings.HasPrefix(root, env.StateDir+"/") {
			t.Errorf("image root %s is not under the driver's state directory %s", root, env.StateDir)
		}
		checkRoot(t, root)
		if v := views(t); len(v) != 2 {
			t.Errorf("views while in use: %q, want its snapshot and its lease", v)
		}
		// A new driver value sweeps stale views; this one is in use and stays.
		env.NewDriver(t)
		checkRoot(t, root)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen == "" {
		t.Fatal("fn was not called")
	}
	checkGone(t, seen)
}

func TestWithImageRootUnknownImage(t *testing.T) {
	d := env.NewDriver(t)
	err := d.WithImageRoot(context.Background(), "localhost/strata/not-imported:1", func(string) error {
		t.Error("fn called for an image that is not there")
		return nil
	})
	if !errors.Is(err, runtime.ErrImageNotFound) {
		t.Errorf("got %v, want ErrImageNotFound", err)
	}
}

// TestWithImageRootFnFails: fn's error comes back, a panic goes through,
// and the view is removed either way.
func TestWithImageRootFnFails(t *testing.T) {
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	errFn := errors.New("copy failed")
	var root string
	err := d.WithImageRoot(context.Background(), image, func(r string) error {
		root = r
		return errFn
	})
	if !errors.Is(err, errFn) {
		t.Errorf("got %v, want fn's error", err)
	}
	checkGone(t, root)

	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want fn's panic", r)
			}
		}()
		_ = d.WithImageRoot(context.Background(), image, func(r string) error {
			root = r
			panic("boom")
		})
	}()
	checkGone(t, root)
}

// TestWithImageRootBusy: a file still open in the view when fn returns
// keeps the mount busy; the view is detached lazily, so it disappears from
// the mount table while the open file still reads.
func TestWithImageRootBusy(t *testing.T) {
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	var (
		root string
		held *os.File
	)
	err := d.WithImageRoot(context.Background(), image, func(r string) error {
		root = r
		f, err := os.Open(filepath.Join(r, "bin", "busybox"))
		held = f
		return err
	})
	if held != nil {
		defer held.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	checkGone(t, root)
	if _, err := held.Read(make([]byte, 4)); err != nil {
		t.Errorf("reading the file held open across the detach: %v", err)
	}
}

// TestWithImageRootConcurrent: two views of the same image at once.
func TestWithImageRootConcurrent(t *testing.T) {
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	const n = 2
	var (
		wg      sync.WaitGroup
		entered sync.WaitGroup
		mu      sync.Mutex
		roots   []string
		errs    = make([]error, n)
	)
	entered.Add(n)
	allIn := make(chan struct{})
	go func() { entered.Wait(); close(allIn) }()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.WithImageRoot(context.Background(), image, func(root string) error {
				mu.Lock()
				roots = append(roots, root)
				mu.Unlock()
				entered.Done()
				select { // both views exist at the same time
				case <-allIn:
				case <-time.After(time.Minute):
					return errors.New("the other view did not appear within a minute")
				}
				if _, err := os.Stat(filepath.Join(root, "bin", "busybox")); err != nil {
					return err
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("view %d: %v", i, err)
		}
	}
	if len(roots) != n || roots[0] == roots[1] {
		t.Fatalf("roots %q, want %d different ones", roots, n)
	}
	for _, r := range roots {
		checkGone(t, r)
	}
}

// The child process of TestViewLeftByCrash reads its orders from these
// environment variables.
const (
	crashEnv          = "STRATA_TEST_CRASH_VIEW" // the image to view
	crashAddressEnv   = "STRATA_TEST_CRASH_ADDRESS"
	crashNamespaceEnv = "STRATA_TEST_CRASH_NAMESPACE"
	crashStateEnv     = "STRATA_TEST_CRASH_STATE"
)

// crashWhileViewing is the child process of TestViewLeftByCrash: it opens a
// view, prints its root and kills itself with SIGKILL, as a crash would,
// leaving the view behind.
func crashWhileViewing() int {
	ctx := context.Background()
	d, err := containerd.New(ctx, containerd.Config{
		Address:   os.Getenv(crashAddressEnv),
		Namespace: os.Getenv(crashNamespaceEnv),
		StateDir:  os.Getenv(crashStateEnv),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	err = d.WithImageRoot(ctx, os.Getenv(crashEnv), func(root string) error {
		fmt.Println(root)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	})
	fmt.Fprintln(os.Stderr, err)
	return 2
}

// TestViewLeftByCrash: a view whose process died (SIGKILL, no cleanup) is
// removed by the next New.
func TestViewLeftByCrash(t *testing.T) {
	d := env.NewDriver(t)
	ctrdtest.ImportImage(t, d, image)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		crashEnv+"="+image,
		crashAddressEnv+"="+env.Address,
		crashNamespaceEnv+"="+env.Namespace,
		crashStateEnv+"="+env.StateDir,
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed by SIGKILL; stderr: %s", err, stderr.String())
	}
	root := strings.TrimSpace(string(out))
	if root == "" {
		t.Fatalf("the child printed no root; stderr: %s", stderr.String())
	}
	if _, mounted := mountOptions(t, root); !mounted {
		t.Errorf("the crashed child's view %s is not mounted", root)
	}
	if v := views(t); len(v) != 2 {
		t.Errorf("views after the crash: %q, want a snapshot and a lease", v)
	}

	env.NewDriver(t) // sweeps
	checkGone(t, root)
}
