package extract

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// ErrOutside marks an entry whose name or link target leaves the target directory.
var ErrOutside = errors.New("leads outside the target directory")

// ErrTooLarge marks an archive whose files hold more than Options.MaxBytes.
var ErrTooLarge = errors.New("holds more than the allowed size")

// Options says what an extraction may create.
type Options struct {
	// Whiteouts applies an image layer's whiteouts: an entry .wh.NAME removes NAME
	// from its directory, .wh..wh..opq removes everything in its directory that
	// the archive did not put there. Without it they are ordinary files.
	Whiteouts bool
	// SpecialModes keeps the setuid and setgid bits of entries; without it they
	// are cleared. The sticky bit is always kept.
	SpecialModes bool
	// Owners gives entries the user and group IDs their headers name; without it
	// they belong to the extracting process.
	Owners bool
	// MaxBytes bounds the total size of the regular files' contents; 0 is no bound.
	MaxBytes int64
}

// Stats counts what an extraction did.
type Stats struct {
	// Entries is the number of entries created (directories, files, links).
	Entries int
	// Bytes is the size of the regular files' contents written.
	Bytes int64
	// Skipped is the number of entries left out: device nodes, pipes, sockets
	// and kinds of entries the tar format adds that hold no file.
	Skipped int
}

// Extract reads a tar stream from r and creates its entries beneath root. Entries
// replace what is at their names, except that a directory entry keeps an existing
// directory. It stops at the first entry it cannot create; what was created until
// then stays.
func Extract(r io.Reader, root *os.Root, opt Options) (Stats, error) {
	x := extractor{root: root, opt: opt, written: map[string]bool{}}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return x.stats, err
		}
		if err := x.entry(hdr, tr); err != nil {
			return x.stats, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	// Directories' times last: creating their contents moved them.
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if err := root.Chtimes(d.name, d.mtime, d.mtime); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return x.stats, fmt.Errorf("entry %q: %w", d.name, err)
		}
	}
	return x.stats, nil
}

type dirTime struct {
	name  string
	mtime time.Time
}

type extractor struct {
	root    *os.Root
	opt     Options
	stats   Stats
	dirs    []dirTime
	written map[string]bool // names this archive created, and their parents
}

// clean returns an entry's name relative to the target, or an error wrapping
// ErrOutside when it is absolute or climbs out with "..".
func clean(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("absolute name %w", ErrOutside)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("name %w", ErrOutside)
	}
	return c, nil
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name, err := clean(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		return nil // the target itself
	}
	base := path.Base(name)
	if x.opt.Whiteouts && strings.HasPrefix(base, ".wh.") {
		return x.whiteout(name)
	}
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
	default:
		x.stats.Skipped++
		return nil
	}
	if err := x.parents(name); err != nil {
		return err
	}
	if err := x.clear(name, hdr.Typeflag == tar.TypeDir); err != nil {
		return err
	}
	x.written[name] = true
	x.stats.Entries++
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := x.root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		x.dirs = append(x.dirs, dirTime{name, hdr.ModTime})
	case tar.TypeReg:
		if err := x.file(name, hdr, r); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := x.root.Symlink(hdr.Linkname, name); err != nil {
			return err
		}
		if x.opt.Owners {
			return x.root.Lchown(name, hdr.Uid, hdr.Gid)
		}
		return nil
	case tar.TypeLink:
		target, err := clean(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
		}
		// The link shares the target's inode, mode and owner: nothing to set.
		return x.root.Link(target, name)
	}
	if x.opt.Owners {
		if err := x.root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	// After chown, which clears the setuid and setgid bits.
	if err := x.root.Chmod(name, x.mode(hdr)); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg {
		return x.root.Chtimes(name, hdr.ModTime, hdr.ModTime)
	}
	return nil
}

func (x *extractor) mode(hdr *tar.Header) fs.FileMode {
	m := hdr.FileInfo().Mode()
	keep := fs.ModePerm | fs.ModeSticky
	if x.opt.SpecialModes {
		keep |= fs.ModeSetuid | fs.ModeSetgid
	}
	return m & keep
}

// file writes a regular file's contents, within MaxBytes.
func (x *extractor) file(name string, hdr *tar.Header, r io.Reader) (err error) {
	out, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	src := r
	if x.opt.MaxBytes > 0 {
		left := x.opt.MaxBytes - x.stats.Bytes
		if hdr.Size > left {
			return fmt.Errorf("the archive %w (%d bytes)", ErrTooLarge, x.opt.MaxBytes)
		}
		src = io.LimitReader(r, left)
	}
	n, err := io.Copy(out, src)
	x.stats.Bytes += n
	return err
}

// parents makes the directories above name that the archive did not list.
func (x *extractor) parents(name string) error {
	dir := path.Dir(name)
	for d := dir; d != "."; d = path.Dir(d) {
		x.written[d] = true
	}
	if dir == "." {
		return nil
	}
	return x.root.MkdirAll(dir, 0o755)
}

// clear removes what is at name unless both it and the new entry are directories.
func (x *extractor) clear(name string, dir bool) error {
	fi, err := x.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if dir && fi.IsDir() {
		return nil
	}
	return x.root.RemoveAll(name)
}

// whiteout applies a layer's .wh. entry.
func (x *extractor) whiteout(name string) error {
	dir, base := path.Dir(name), path.Base(name)
	if base == ".wh..wh..opq" {
		return x.opaque(dir)
	}
	hidden := strings.TrimPrefix(base, ".wh.")
	if hidden == "" || hidden == "." || hidden == ".." {
		return fmt.Errorf("whiteout of %q: %w", hidden, ErrOutside)
	}
	victim := path.Join(dir, hidden)
	if err := x.root.RemoveAll(victim); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// opaque removes everything beneath dir that the archive did not write.
func (x *extractor) opaque(dir string) error {
	f, err := x.root.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		child := path.Join(dir, e.Name())
		switch {
		case !x.written[child]:
			if err := x.root.RemoveAll(child); err != nil {
				return err
			}
		case e.IsDir():
			if err := x.opaque(child); err != nil {
				return err
			}
		}
	}
	return nil
}
