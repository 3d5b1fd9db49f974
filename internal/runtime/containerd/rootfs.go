package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/diff"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/mount"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/extract"
	"strata.dev/strata/internal/runtime"
)

var _ runtime.RootfsSaver = (*Driver)(nil)

// How a root filesystem's changes are copied (RootfsSaver):
//   - a container (runc) writes to the upper directory of its overlay snapshot on the
//     host: containerd's diff service compares the snapshot with its image (a read-only
//     view of the parent) and writes the difference as an uncompressed layer;
//   - a sandbox (runsc) keeps what its processes write in the sandbox's own overlay,
//     which the host cannot see: runsc serializes that upper layer itself
//     (`runsc tar rootfs-upper`), and removals it records as overlay whiteouts (0:0
//     character devices) are turned into the layer's .wh. entries on the way.
//
// Either way a start with InstanceSpec.RootfsLayer unpacks the archive into the new
// container's snapshot itself, beneath the snapshot's mount point (applyRootfsLayer),
// before its task exists. Everything the copy puts into containerd (the view, the
// layer) is held by a lease that ends with the call, so containerd's garbage collector
// removes it.

// rootfsLease bounds how long a copy's leftovers live in containerd if strata dies
// before it ends the lease.
const rootfsLease = time.Hour

// copyBuffer is the size of one read from containerd's content store.
const copyBuffer = 1 << 20

// SaveRootfs implements runtime.RootfsSaver.
func (d *Driver) SaveRootfs(ctx context.Context, id string, w io.Writer) error {
	_, info, err := d.load(ctx, id)
	if err != nil {
		return err
	}
	if parseLabels(info.Labels).tier == v1alpha1.TierSandbox {
		return d.saveSandboxRootfs(ctx, id, w)
	}
	ctx, done, err := d.client.WithLease(ctx, leases.WithRandomID(), leases.WithExpiration(rootfsLease))
	if err != nil {
		return fmt.Errorf("instance %q: lease: %w", id, err)
	}
	defer func() { _ = done(context.WithoutCancel(ctx)) }()

	sn := d.client.SnapshotService(info.Snapshotter)
	si, err := sn.Stat(ctx, info.SnapshotKey)
	if err != nil {
		return fmt.Errorf("instance %q: root filesystem snapshot: %w", id, err)
	}
	viewKey := info.SnapshotKey + "-view-" + randomSuffix()
	lower, err := sn.View(ctx, viewKey, si.Parent)
	if err != nil {
		return fmt.Errorf("instance %q: view of the image: %w", id, err)
	}
	defer func() { _ = sn.Remove(context.WithoutCancel(ctx), viewKey) }()
	upper, err := sn.Mounts(ctx, info.SnapshotKey)
	if err != nil {
		return fmt.Errorf("instance %q: root filesystem mounts: %w", id, err)
	}
	desc, err := d.client.DiffService().Compare(ctx, lower, upper,
		diff.WithMediaType(ocispec.MediaTypeImageLayer), diff.WithReference("strata-rootfs-"+id+"-"+randomSuffix()))
	if err != nil {
		return fmt.Errorf("instance %q: compare the root filesystem with its image: %w", id, err)
	}
	ra, err := d.client.ContentStore().ReaderAt(ctx, desc)
	if err != nil {
		return fmt.Errorf("instance %q: read the layer: %w", id, err)
	}
	defer ra.Close()
	// Every read of the content store is a round trip to containerd: read in large pieces
	// (io.Copy's 32 KiB reads made the copy ten times slower).
	buf := make([]byte, copyBuffer)
	if _, err := io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{content.NewReader(ra)}, buf); err != nil {
		return fmt.Errorf("instance %q: copy the layer: %w", id, err)
	}
	return nil
}

// saveSandboxRootfs has runsc write the sandbox's upper layer and converts its
// whiteouts.
func (d *Driver) saveSandboxRootfs(ctx context.Context, id string, w io.Writer) error {
	tmp, err := os.CreateTemp(d.cfg.StateDir, ".rootfs-"+id+"-*.tar")
	if err != nil {
		return fmt.Errorf("instance %q: %w", id, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	// The shim runs runsc with its state under the sandbox's root, one directory per
	// containerd namespace; a sandbox started before each had a root of its own is in
	// the shared one.
	root := filepath.Join(d.runtimeRoot(v1alpha1.TierSandbox, id), d.cfg.Namespace)
	if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
		root = filepath.Join(d.runtimeDir(v1alpha1.TierSandbox), d.cfg.Namespace)
	}
	cmd := exec.CommandContext(ctx, d.cfg.Runsc, "--root", root, "tar", "rootfs-upper", "--file", tmp.Name(), id) //nolint:gosec // the configured runsc, a checked instance ID
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("instance %q: runsc tar rootfs-upper: %w: %s", id, err, lastLine(out))
	}
	if err := extract.WhiteoutsToLayer(w, tmp); err != nil {
		return fmt.Errorf("instance %q: the sandbox's layer: %w", id, err)
	}
	return nil
}

// applyRootfsLayer applies the layer archive at file to container c's new snapshot,
// before its task exists: the snapshot is mounted under the state directory and the
// layer unpacked beneath that mount point and nowhere else (package extract), so no
// entry, symbolic link or hard link of the layer reaches outside the container's root
// filesystem. Whiteouts remove what the image holds; setuid and setgid bits are kept
// (root filesystems have them); device nodes, pipes and sockets are left out (the
// runtime gives a container its /dev).
func (d *Driver) applyRootfsLayer(ctx context.Context, c ctr.Container, file string) (err error) {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("root filesystem layer: %w", err)
	}
	defer f.Close()
	info, err := c.Info(ctx, ctr.WithoutRefreshedMetadata)
	if err != nil {
		return err
	}
	mounts, err := d.client.SnapshotService(info.Snapshotter).Mounts(ctx, info.SnapshotKey)
	if err != nil {
		return fmt.Errorf("root filesystem mounts: %w", err)
	}
	dir, err := os.MkdirTemp(d.cfg.StateDir, ".rootfs-apply-"+c.ID()+"-")
	if err != nil {
		return err
	}
	defer func() {
		if rerr := os.Remove(dir); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if err := mount.All(mounts, dir); err != nil {
		return fmt.Errorf("mount the root filesystem: %w", err)
	}
	defer func() {
		if uerr := mount.UnmountAll(dir, 0); uerr != nil {
			err = errors.Join(err, fmt.Errorf("unmount the root filesystem: %w", uerr))
		}
	}()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if _, err := extract.Extract(f, root, extract.Options{Whiteouts: true, SpecialModes: true, Owners: true}); err != nil {
		return fmt.Errorf("apply the root filesystem layer %s: %w", file, err)
	}
	return nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lastLine is the last non-empty line of a program's output, for error messages.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
