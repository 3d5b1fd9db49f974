package initproc

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/extract"
	"strata.dev/strata/internal/guest"
)

// The overlayfs attributes of an upper directory's entries (the guest
// mounts without userxattr, so they are trusted.*).
const (
	xattrOpaque   = "trusted.overlay.opaque"   // "y": the directory hides the image's
	xattrRedirect = "trusted.overlay.redirect" // a directory renamed from the image
	xattrMetacopy = "trusted.overlay.metacopy" // a file whose data is still the image's
)

// saveRootfs answers NodeRootfs as an exec: the layer archive of container
// id's changes (writeLayer) as output frames, then exit code 0; an error
// and exit code 1 when it cannot be written to its end.
func (n *node) saveRootfs(out *frameWriter, id string) {
	c, ok := n.get(id)
	if !ok {
		out.fail(fmt.Errorf("no container %q in this node VM", id), 1)
		return
	}
	if c.runtime() == guest.RuntimeRunsc {
		// runsc keeps a sandbox's writes in its own overlay, not in the upper directory.
		out.fail(fmt.Errorf("container %s runs under runsc, which keeps its changes inside the sandbox: no layer of them yet", id), 1)
		return
	}
	bw := bufio.NewWriterSize(outputFrames{out}, 32<<10)
	err := writeLayer(bw, filepath.Join(c.dir, "upper"))
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		out.fail(fmt.Errorf("container %s: layer of its changes: %w", id, err), 1)
		return
	}
	out.frame(guest.FrameExit, guest.ExitPayload(0))
}

// applyLayer answers NodeLayer as an exec: it unpacks the layer archive
// read from in into created container id's root filesystem (its overlayfs,
// so that files removed by whiteouts become the overlay's own whiteouts),
// beneath it and nowhere else (package extract), then exit code 0.
// Setuid and setgid bits and owners are kept (root filesystems have them);
// device nodes, pipes and sockets are left out (the runtime gives a
// container its /dev).
func (n *node) applyLayer(out *frameWriter, in io.Reader, id string) {
	c, ok := n.get(id)
	if !ok {
		out.fail(fmt.Errorf("no container %q in this node VM", id), 1)
		return
	}
	if state, _ := n.status(c); state != guest.StateCreated {
		out.fail(fmt.Errorf("container %s is %s; a layer goes into a created container, before it starts", id, state), 1)
		return
	}
	root, err := os.OpenRoot(filepath.Join(c.dir, "rootfs"))
	if err != nil {
		out.fail(fmt.Errorf("container %s: %w", id, err), 1)
		return
	}
	defer root.Close()
	if _, err := extract.Extract(in, root, extract.Options{Whiteouts: true, SpecialModes: true, Owners: true}); err != nil {
		out.fail(fmt.Errorf("container %s: apply the root filesystem layer: %w", id, err), 1)
		return
	}
	out.frame(guest.FrameExit, guest.ExitPayload(0))
}

// stdinFrames reads the stdin frames of a stream as bytes until the host
// closes its stdin (io.EOF).
type stdinFrames struct {
	in   *bufio.Reader
	rest []byte
	eof  bool
}

func (s *stdinFrames) Read(p []byte) (int, error) {
	for len(s.rest) == 0 {
		if s.eof {
			return 0, io.EOF
		}
		f, err := guest.ReadFrame(s.in)
		if err != nil {
			// The stream ended before the host closed stdin: the archive is cut short.
			return 0, fmt.Errorf("the host's stream ended before the layer did: %w", io.ErrUnexpectedEOF)
		}
		switch f.Kind {
		case guest.FrameStdin:
			s.rest = f.Payload
		case guest.FrameStdinClose:
			s.eof = true
		}
	}
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

// outputFrames writes what it is given as output frames.
type outputFrames struct{ fw *frameWriter }

func (o outputFrames) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		k := min(len(rest), guest.MaxFramePayload)
		o.fw.frame(guest.FrameStdout, rest[:k])
		rest = rest[k:]
	}
	o.fw.mu.Lock()
	defer o.fw.mu.Unlock()
	if o.fw.broken {
		return 0, errors.New("the host has gone")
	}
	return len(p), nil
}

// writeLayer writes what an overlayfs upper directory holds as a layer
// archive (the OCI image layer format): the directories, files and links
// added or changed, with their modes, owners and times; a whiteout
// .wh.NAME for each entry removed (a 0/0 character device in the upper
// directory); and .wh..wh..opq in a directory that hides the image's
// (opaque). A directory renamed from the image and a file whose data the
// upper directory does not hold (redirect, metacopy: the guest mounts
// without those features) are errors.
func writeLayer(w io.Writer, upper string) error {
	tw := tar.NewWriter(w)
	linked := map[uint64]string{} // inode -> first name, for hard links
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(upper, p)
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
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path.Join(path.Dir(name), ".wh."+path.Base(name)),
				Mode: 0o600, ModTime: fi.ModTime(), Format: tar.FormatPAX})
		case mode.IsDir():
			if xattr(p, xattrRedirect) != "" {
				return fmt.Errorf("%s: a directory renamed from the image (overlay redirect) cannot be written as a layer", name)
			}
			if err := writeEntry(tw, fi, st, name+"/", ""); err != nil {
				return err
			}
			if xattr(p, xattrOpaque) == "y" {
				return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path.Join(name, ".wh..wh..opq"),
					Mode: 0o600, ModTime: fi.ModTime(), Format: tar.FormatPAX})
			}
			return nil
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return writeEntry(tw, fi, st, name, link)
		case mode.IsRegular():
			if xattr(p, xattrMetacopy) != "" {
				return fmt.Errorf("%s: a metadata-only copy (overlay metacopy) cannot be written as a layer", name)
			}
			if st.Nlink > 1 {
				if first, ok := linked[st.Ino]; ok {
					return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: first,
						Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid), Format: tar.FormatPAX})
				}
				linked[st.Ino] = name
			}
			return writeFile(tw, p, name)
		case mode&fs.ModeSocket != 0:
			return nil // a tar holds none, and one means nothing without its process
		default:
			// Device nodes and pipes: the header alone.
			return writeEntry(tw, fi, st, name, "")
		}
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// writeEntry writes the header of an entry without content: its mode,
// owner and time, no user or group names.
func writeEntry(tw *tar.Writer, fi fs.FileInfo, st *syscall.Stat_t, name, link string) error {
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	hdr.Name, hdr.Uname, hdr.Gname = name, "", ""
	hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	hdr.Format = tar.FormatPAX
	return tw.WriteHeader(hdr)
}

// writeFile writes a regular file, its header made from the open file so
// that its size is the one copied.
func writeFile(tw *tar.Writer, p, name string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return nil // replaced since the walk listed it
	}
	if err := writeEntry(tw, fi, st, name, ""); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
		return fmt.Errorf("%s: %w (did it change while it was copied? pause the container first)", name, err)
	}
	return nil
}

// xattr is the value of the extended attribute attr of p (not followed
// when a link), "" when it has none.
func xattr(p, attr string) string {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, attr, buf)
	if err != nil {
		if !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.ENOTSUP) {
			return "?" // unreadable: not taken for absent
		}
		return ""
	}
	return string(buf[:n])
}
