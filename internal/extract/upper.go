package extract

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The overlayfs attributes of an upper directory's entries, as overlayfs
// keeps them when mounted without userxattr (trusted.*).
const (
	XattrOpaque   = "trusted.overlay.opaque"   // "y": the directory hides the lower one's
	XattrRedirect = "trusted.overlay.redirect" // a directory renamed from a lower layer
	XattrMetacopy = "trusted.overlay.metacopy" // a file whose data is still the lower layer's
)

// ErrNotLayer is the error of WriteUpper for an upper directory whose
// changes a layer cannot say file by file (redirected directories,
// metadata-only copies).
var ErrNotLayer = errors.New("the overlay's changes cannot be written as a layer")

// LayerWriter receives the entries of the layer WriteUpper writes.
type LayerWriter interface {
	// WriteHeader writes an entry without content.
	WriteHeader(hdr *tar.Header) error
	// WriteFile writes a regular file's entry: hdr, then hdr.Size bytes of
	// f, whose status is st.
	WriteFile(hdr *tar.Header, f *os.File, st *syscall.Stat_t) error
}

// TarLayer is a LayerWriter onto a tar archive.
type TarLayer struct{ *tar.Writer }

// WriteFile implements LayerWriter.
func (t TarLayer) WriteFile(hdr *tar.Header, f *os.File, _ *syscall.Stat_t) error {
	if err := t.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(t.Writer, f, hdr.Size); err != nil {
		return fmt.Errorf("%s: %w (did it change while it was copied? pause its container first)", hdr.Name, err)
	}
	return nil
}

// WriteUpper writes what the overlayfs upper directory dir holds as the
// entries of a layer (the OCI image layer format), the inverse of Extract
// with Options.Whiteouts: the directories, files and links added or
// changed, with their modes, owners and times and no user or group names;
// a whiteout .wh.NAME for each entry removed (a 0:0 character device in
// the upper directory); .wh..wh..opq in a directory that hides the lower
// one's (opaque). A file with several links is written once, then as hard
// links to its first name. Sockets are left out (they mean nothing without
// their process); device nodes and pipes are written as headers alone.
// Files are opened through dir's root, so that a symbolic link swapped in
// during the walk cannot lead outside it. A redirected directory or a
// metadata-only copy is ErrNotLayer.
func WriteUpper(out LayerWriter, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	linked := map[uint64]string{} // inode -> first name
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
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
			return out.WriteHeader(marker(path.Join(path.Dir(name), ".wh."+path.Base(name)), fi))
		case mode.IsDir():
			if _, ok := xattr(p, XattrRedirect); ok {
				return fmt.Errorf("%s: %w: a renamed directory (overlay redirect)", name, ErrNotLayer)
			}
			if err := writeHeader(out, fi, st, name+"/", ""); err != nil {
				return err
			}
			if v, _ := xattr(p, XattrOpaque); v == "y" {
				return out.WriteHeader(marker(path.Join(name, ".wh..wh..opq"), fi))
			}
			return nil
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return writeHeader(out, fi, st, name, link)
		case mode.IsRegular():
			if _, ok := xattr(p, XattrMetacopy); ok {
				return fmt.Errorf("%s: %w: a metadata-only copy (overlay metacopy)", name, ErrNotLayer)
			}
			if st.Nlink > 1 {
				if first, ok := linked[st.Ino]; ok {
					return out.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: first,
						Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid)})
				}
				linked[st.Ino] = name
			}
			return writeUpperFile(out, root, name)
		case mode&fs.ModeSocket != 0:
			return nil
		default:
			return writeHeader(out, fi, st, name, "")
		}
	})
}

// marker is the header of a whiteout or opaque marker: an empty file.
func marker(name string, fi fs.FileInfo) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, ModTime: fi.ModTime(), Format: tar.FormatPAX}
}

// writeUpperFile writes one regular file, its header made from the open
// file so that its size is the one copied.
func writeUpperFile(out LayerWriter, root *os.Root, name string) error {
	f, err := root.Open(filepath.FromSlash(name))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || !ok {
		return nil // replaced since the walk listed it
	}
	hdr, err := header(fi, st, name, "")
	if err != nil {
		return err
	}
	return out.WriteFile(hdr, f, st)
}

// header is an entry's header: mode, owner and times of the file, no user
// or group names.
func header(fi fs.FileInfo, st *syscall.Stat_t, name, link string) (*tar.Header, error) {
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	hdr.Name = name
	hdr.Uname, hdr.Gname = "", ""
	hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	return hdr, nil
}

func writeHeader(out LayerWriter, fi fs.FileInfo, st *syscall.Stat_t, name, link string) error {
	hdr, err := header(fi, st, name, link)
	if err != nil {
		return err
	}
	return out.WriteHeader(hdr)
}

// xattr is the value of the extended attribute attr of p (not followed
// when a link) and whether p has it (metacopy's may be empty). One that
// cannot be read is taken as there, with no value: a walk that cannot tell
// refuses rather than write a wrong layer.
func xattr(p, attr string) (string, bool) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, attr, buf)
		switch {
		case errors.Is(err, unix.ERANGE) && len(buf) < 64<<10:
			buf = make([]byte, 2*len(buf))
			continue
		case errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP):
			return "", false
		case err != nil:
			return "", true
		}
		return string(buf[:n]), true
	}
}
