package containerd

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/containerd/containerd/mount"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/extract"
	"strata.dev/strata/internal/runtime"
)

var _ runtime.RootfsPlanSaver = (*Driver)(nil)

// How a layer is written for a backup (RootfsPlanSaver): a container's changes are the
// upper directory of its overlay snapshot, which the host sees, so the driver walks it
// itself rather than asking containerd's diff service (which reads every file): what
// the upper directory holds is written as a layer, a removal (an overlay whiteout, a
// 0:0 character device) as a .wh.NAME entry, an opaque directory as its
// .wh..wh..opq entry, and the content of a large file the backup's index knows is
// left out. A sandbox's changes are inside runsc, and an overlay whose upper
// directory holds redirected directories or metadata-only copies does not say its
// changes file by file: for those it is ErrUnsupported, and the caller writes the
// layer whole (SaveRootfs).

// SaveRootfsPlan implements runtime.RootfsPlanSaver.
func (d *Driver) SaveRootfsPlan(ctx context.Context, id string, w io.Writer, unchanged runtime.Unchanged) ([]runtime.TarFile, error) {
	_, info, err := d.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if parseLabels(info.Labels).tier == v1alpha1.TierSandbox {
		return nil, fmt.Errorf("instance %q: %w: a sandbox keeps its changes inside runsc", id, runtime.ErrUnsupported)
	}
	mounts, err := d.client.SnapshotService(info.Snapshotter).Mounts(ctx, info.SnapshotKey)
	if err != nil {
		return nil, fmt.Errorf("instance %q: root filesystem mounts: %w", id, err)
	}
	upper, ok := upperDir(mounts)
	if !ok {
		return nil, fmt.Errorf("instance %q: %w: its root filesystem is not an overlay with an upper directory", id, runtime.ErrUnsupported)
	}
	plan, err := writeUpperLayer(w, upper, unchanged)
	if err != nil {
		return nil, fmt.Errorf("instance %q: %w", id, err)
	}
	return plan, nil
}

// upperDir is the upper directory of an overlay snapshot's mount.
func upperDir(mounts []mount.Mount) (string, bool) {
	if len(mounts) != 1 || mounts[0].Type != "overlay" {
		return "", false
	}
	for _, o := range mounts[0].Options {
		if dir, ok := strings.CutPrefix(o, "upperdir="); ok {
			return dir, true
		}
	}
	return "", false
}

// writeUpperLayer writes the overlay upper directory dir to w as a layer archive
// (extract.WriteUpper), for a backup when unchanged is set (runtime.PlanWriter), and
// returns its plan. An upper directory a layer cannot say file by file is
// ErrUnsupported.
func writeUpperLayer(w io.Writer, dir string, unchanged runtime.Unchanged) ([]runtime.TarFile, error) {
	out := runtime.NewPlanWriter(w, unchanged)
	if err := extract.WriteUpper(planLayer{out}, dir); err != nil {
		if errors.Is(err, extract.ErrNotLayer) {
			return nil, fmt.Errorf("%w: %w", runtime.ErrUnsupported, err)
		}
		return nil, err
	}
	if err := out.Close(); err != nil {
		return nil, err
	}
	return out.Plan(), nil
}

// planLayer writes a layer's entries through a backup's PlanWriter, which
// leaves out the content of files the backup has.
type planLayer struct{ *runtime.PlanWriter }

func (p planLayer) WriteFile(hdr *tar.Header, f *os.File, st *syscall.Stat_t) error {
	return p.PlanWriter.WriteFile(hdr, f, runtime.StateOf(st))
}
