package containerd

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/containerd/containerd/mount"

	"strata.dev/strata/api/v1alpha1"
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

// Overlay's attributes in an upper directory (trusted.overlay.*).
const (
	xattrOpaque   = "trusted.overlay.opaque"
	xattrRedirect = "trusted.overlay.redirect"
	xattrMetacopy = "trusted.overlay.metacopy"
)

// writeUpperLayer writes the overlay upper directory dir to w as a layer archive, for
// a backup when unchanged is set (runtime.PlanWriter), and returns its plan. Files are
// opened through dir's root, so that a symbolic link swapped in during the walk cannot
// lead the copy outside it. A file with several links is written once, then as hard
// links to its first name.
func writeUpperLayer(w io.Writer, dir string, unchanged runtime.Unchanged) ([]runtime.TarFile, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	out := runtime.NewPlanWriter(w, unchanged)
	linked := map[uint64]string{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no file status", name)
		}
		mode := fi.Mode()
		switch {
		case mode&fs.ModeCharDevice != 0 && st.Rdev == 0:
			return out.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path.Join(path.Dir(name), ".wh."+path.Base(name)),
				Mode: 0o600, ModTime: fi.ModTime(), Format: tar.FormatPAX})
		case mode.IsDir():
			if hasXattr(p, xattrRedirect) {
				return fmt.Errorf("%s: %w: a renamed directory (overlay redirect)", name, runtime.ErrUnsupported)
			}
			if err := writeLayerHeader(out, fi, st, name+"/", ""); err != nil {
				return err
			}
			if v, _ := getXattr(p, xattrOpaque); v == "y" {
				return out.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path.Join(name, ".wh..wh..opq"),
					Mode: 0o600, ModTime: fi.ModTime(), Format: tar.FormatPAX})
			}
			return nil
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return writeLayerHeader(out, fi, st, name, link)
		case mode.IsRegular():
			return writeUpperFile(out, root, p, name, st, linked)
		case mode&fs.ModeSocket != 0:
			return nil // a tar cannot hold one, and it means nothing without its process
		default:
			// Device nodes and pipes: the header alone (a restore leaves them out; the
			// runtime gives a container its /dev).
			return writeLayerHeader(out, fi, st, name, "")
		}
	})
	if err != nil {
		return nil, err
	}
	if err := out.Close(); err != nil {
		return nil, err
	}
	return out.Plan(), nil
}

// writeUpperFile writes one regular file of an upper directory.
func writeUpperFile(out *runtime.PlanWriter, root *os.Root, p, name string, st *syscall.Stat_t, linked map[uint64]string) error {
	if hasXattr(p, xattrMetacopy) {
		return fmt.Errorf("%s: %w: a metadata-only copy (overlay metacopy)", name, runtime.ErrUnsupported)
	}
	if st.Nlink > 1 {
		if first, ok := linked[st.Ino]; ok {
			return out.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: first,
				Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid)})
		}
		linked[st.Ino] = name
	}
	src, err := root.Open(filepath.FromSlash(name))
	if err != nil {
		return err
	}
	defer src.Close()
	// The header is made from the open file, so that its size is the one copied.
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	ost, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || !ok {
		return nil // replaced since the walk listed it
	}
	hdr, err := layerHeader(fi, ost, name, "")
	if err != nil {
		return err
	}
	return out.WriteFile(hdr, src, runtime.StateOf(ost))
}

// layerHeader is a layer entry's header: mode, owner and times of the file, no user
// or group names.
func layerHeader(fi fs.FileInfo, st *syscall.Stat_t, name, link string) (*tar.Header, error) {
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	hdr.Name = name
	hdr.Uname, hdr.Gname = "", ""
	hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	return hdr, nil
}

// writeLayerHeader writes the header of an entry without content.
func writeLayerHeader(out *runtime.PlanWriter, fi fs.FileInfo, st *syscall.Stat_t, name, link string) error {
	hdr, err := layerHeader(fi, st, name, link)
	if err != nil {
		return err
	}
	return out.WriteHeader(hdr)
}

// getXattr reads the extended attribute attr of the directory or regular file at p.
func getXattr(p, attr string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := syscall.Getxattr(p, attr, buf)
		if errors.Is(err, syscall.ERANGE) && len(buf) < 64<<10 {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
}

func hasXattr(p, attr string) bool {
	_, err := getXattr(p, attr)
	return err == nil
}
