package snapshot

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"strata.dev/strata/internal/extract"
	"strata.dev/strata/internal/runtime"
)

// LargeFile is the size from which a regular file of a volume or a root filesystem
// layer is listed in a backup's archive plan (runtime.LargeFile).
const LargeFile = runtime.LargeFile

// FileState is what a backup's file index compares (runtime.FileState).
type FileState = runtime.FileState

// TarFile is one large regular file of an archive a backup snapshot wrote (see
// PlanSuffix and runtime.TarFile).
type TarFile = runtime.TarFile

// PlanSuffix names an archive's plan next to it in a backup snapshot
// (VOLUME.tar.plan, rootfs.tar.plan; JSON []TarFile); a snapshot taken without an
// index, or a layer its driver could only write whole, has none.
const PlanSuffix = ".plan"

// Unchanged says whether the file at path (relative to the volume or the root
// filesystem) is what the last backup holds; a snapshot for a backup then leaves its
// content out of the archive.
type Unchanged = runtime.Unchanged

// writeTar archives the tree under dir into the file at path: directories, regular
// files and symbolic links with their modes, owners and modification times. Other
// kinds of files (devices, sockets, pipes) are skipped: volumes hold data. With
// unchanged set (a backup's snapshot), it writes the archive's plan too (PlanSuffix)
// and leaves out the content of large files unchanged says the last backup holds; such an
// archive is not synced to the disk.
func writeTar(path, dir string, unchanged Unchanged) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	// Files are opened through the volume's root, so that a symbolic link swapped in
	// during the walk cannot lead the copy outside the volume.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	out := runtime.NewPlanWriter(f, unchanged)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.IsDir(), fi.Mode().IsRegular():
		default:
			return nil
		}
		var src *os.File
		if fi.Mode().IsRegular() {
			if src, err = root.Open(rel); err != nil {
				return err
			}
			defer src.Close()
			// The header is made from the open file, so that its size is the one copied.
			if fi, err = src.Stat(); err != nil {
				return err
			}
			if !fi.Mode().IsRegular() {
				return nil // replaced since the walk listed it
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		var before FileState
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			before = runtime.StateOf(st)
		}
		if src == nil {
			return out.WriteHeader(hdr)
		}
		return out.WriteFile(hdr, src, before)
	})
	if err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if unchanged != nil {
		return writePlan(path, out.Plan())
	}
	return f.Sync()
}

// writePlan writes an archive's plan next to it (PlanSuffix). A backup's snapshot is
// read once, right away, and deleted: it need not reach the disk (a crash ends the
// backup anyway).
func writePlan(archive string, plan []TarFile) error {
	data, err := json.Marshal(plan)
	if err != nil {
		return err
	}
	return os.WriteFile(archive+PlanSuffix, data, 0o600)
}

// readTar replaces the contents of dir with the archive at path. Everything is
// created beneath dir (package extract): an entry whose name, symbolic link or hard
// link leads outside is refused. A volume holds data, so setuid and setgid bits are
// cleared and device nodes, pipes and sockets are left out.
func readTar(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // a volume: instances may run as any user
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := root.RemoveAll(e.Name()); err != nil {
			return err
		}
	}
	if _, err := extract.Extract(f, root, extract.Options{Owners: true}); err != nil {
		return fmt.Errorf("volume archive %s: %w", path, err)
	}
	return nil
}
