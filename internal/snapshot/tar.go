package snapshot

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"strata.dev/strata/internal/extract"
)

// LargeFile is the size from which a volume's regular file is listed in a backup's
// tar plan (TarFile): its content is chunked on its own and can be reused by the next
// backup without reading it. Smaller files are read every time.
const LargeFile = 64 << 10

// FileState is what a backup's file index compares to decide that a file did not
// change: any write changes the ctime (even when the size and mtime are set back), and
// a file replaced by a rename has another inode.
type FileState struct {
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime"` // nanoseconds since the epoch
	Ctime int64  `json:"ctime"`
	Inode uint64 `json:"inode"`
	Mode  uint32 `json:"mode"`
}

// stateOf is the FileState of a stat result.
func stateOf(st *syscall.Stat_t) FileState {
	return FileState{Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Inode: st.Ino, Mode: st.Mode}
}

// TarFile is one large regular file of a volume archive a backup snapshot wrote (see
// PlanSuffix): where its content starts in the archive and what it was.
type TarFile struct {
	Path   string    `json:"path"`
	Offset int64     `json:"offset"`
	Size   int64     `json:"size"`
	State  FileState `json:"state"`
	// Skipped says the content is not in the archive: the index said the file did not
	// change since the last backup, which holds it. The archive goes on at Offset
	// with the padding after the content.
	Skipped bool `json:"skipped,omitempty"`
	// Unstable says the file changed while it was copied (its instance was not
	// frozen): it must not go into the index.
	Unstable bool `json:"unstable,omitempty"`
}

// PlanSuffix names a volume archive's plan next to it in a backup snapshot
// (VOLUME.tar.plan, JSON []TarFile); a snapshot taken without an index has none.
const PlanSuffix = ".plan"

// Unchanged says whether the file at path (relative to the volume) is what the last
// backup holds; a snapshot for a backup then leaves its content out of the archive.
type Unchanged func(path string, st FileState) bool

// countWriter counts what it writes.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

var zeroBlock [2 * 512]byte

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
	// Each entry's header is made by a tar.Writer of its own, and the content written
	// here, so that a skipped content leaves no state behind.
	out := &countWriter{w: f}
	var plan []TarFile
	var hdrBuf bytes.Buffer
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
		var before FileState
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
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			before = stateOf(st)
		}
		hdrBuf.Reset()
		if err := tar.NewWriter(&hdrBuf).WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := out.Write(hdrBuf.Bytes()); err != nil {
			return err
		}
		if src == nil {
			return nil
		}
		size := fi.Size()
		large := unchanged != nil && size >= LargeFile
		tf := TarFile{Path: hdr.Name, Offset: out.n, Size: size, State: before}
		if large && unchanged(hdr.Name, before) {
			tf.Skipped = true
		} else {
			n, err := io.CopyN(out, src, size)
			if err != nil {
				return fmt.Errorf("%s: copied %d of its %d bytes: %w", rel, n, size, err)
			}
			if large {
				after, err := src.Stat()
				if err != nil {
					return err
				}
				st, _ := after.Sys().(*syscall.Stat_t)
				tf.Unstable = st == nil || stateOf(st) != before
			}
		}
		if large {
			plan = append(plan, tf)
		}
		_, err = out.Write(zeroBlock[:(512-size%512)%512])
		return err
	})
	if err != nil {
		return err
	}
	if _, err := out.Write(zeroBlock[:]); err != nil {
		return err
	}
	if unchanged != nil {
		data, err := json.Marshal(plan)
		if err != nil {
			return err
		}
		// A backup's snapshot is read once, right away, and deleted: it need not
		// reach the disk (a crash ends the backup anyway).
		return os.WriteFile(path+PlanSuffix, data, 0o600)
	}
	return f.Sync()
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
