package runtime

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
)

// LargeFile is the size from which a regular file of a backup's archive (a volume's
// or a root filesystem layer's) is listed in the archive's plan (TarFile): its
// content is chunked on its own and can be reused by the next backup without reading
// it. Smaller files are read every time.
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

// StateOf is the FileState of a stat result.
func StateOf(st *syscall.Stat_t) FileState {
	return FileState{Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Inode: st.Ino, Mode: st.Mode}
}

// TarFile is one large regular file of an archive written for a backup: where its
// content starts in the archive and what it was.
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

// Unchanged says whether the file at path (its name in the archive) is what the last
// backup holds; an archive written for a backup then leaves its content out.
type Unchanged func(path string, st FileState) bool

// RootfsPlanSaver is a RootfsSaver that can write a root filesystem layer for a
// backup: the content of every large regular file (LargeFile and up) that unchanged
// says the last backup holds is left out of the archive, and every large file is
// listed in the returned plan, in archive order. Directories, links, whiteouts and
// small files are written as SaveRootfs writes them. It returns ErrUnsupported when
// it cannot list the instance's changes as host files (a sandbox keeps them inside its
// own kernel): the caller then discards what was written and uses SaveRootfs.
type RootfsPlanSaver interface {
	RootfsSaver
	SaveRootfsPlan(ctx context.Context, id string, w io.Writer, unchanged Unchanged) ([]TarFile, error)
}

// PlanWriter writes a tar archive whose large regular files may be left out: each
// entry's header is made by a tar.Writer of its own and the content copied here, so
// an archive with every content put back at its plan's offsets is the one written
// without an Unchanged, byte for byte.
type PlanWriter struct {
	w         io.Writer
	n         int64
	unchanged Unchanged
	plan      []TarFile
	hdr       bytes.Buffer
}

// NewPlanWriter returns a PlanWriter to w; with unchanged nil it leaves nothing out
// and keeps no plan.
func NewPlanWriter(w io.Writer, unchanged Unchanged) *PlanWriter {
	return &PlanWriter{w: w, unchanged: unchanged}
}

func (p *PlanWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	return n, err
}

var zeroBlock [2 * 512]byte

// WriteHeader writes an entry that has no content (a directory, a link, a whiteout).
func (p *PlanWriter) WriteHeader(hdr *tar.Header) error {
	p.hdr.Reset()
	if err := tar.NewWriter(&p.hdr).WriteHeader(hdr); err != nil {
		return err
	}
	_, err := p.Write(p.hdr.Bytes())
	return err
}

// WriteFile writes a regular file: hdr, made from src's Stat, and src's content, or
// for a large file unchanged knows, a plan entry in its place. before is the state of
// that Stat.
func (p *PlanWriter) WriteFile(hdr *tar.Header, src *os.File, before FileState) error {
	if err := p.WriteHeader(hdr); err != nil {
		return err
	}
	size := hdr.Size
	large := p.unchanged != nil && size >= LargeFile
	tf := TarFile{Path: hdr.Name, Offset: p.n, Size: size, State: before}
	if large && p.unchanged(hdr.Name, before) {
		tf.Skipped = true
	} else {
		n, err := io.CopyN(p, src, size)
		if err != nil {
			return fmt.Errorf("%s: copied %d of its %d bytes: %w", hdr.Name, n, size, err)
		}
		if large {
			after, err := src.Stat()
			if err != nil {
				return err
			}
			st, _ := after.Sys().(*syscall.Stat_t)
			tf.Unstable = st == nil || StateOf(st) != before
		}
	}
	if large {
		p.plan = append(p.plan, tf)
	}
	_, err := p.Write(zeroBlock[:(512-size%512)%512])
	return err
}

// Close writes the archive's end; it does not close the underlying writer.
func (p *PlanWriter) Close() error {
	_, err := p.Write(zeroBlock[:])
	return err
}

// Plan is the archive's large files, in archive order (nil without an Unchanged).
func (p *PlanWriter) Plan() []TarFile { return p.plan }
