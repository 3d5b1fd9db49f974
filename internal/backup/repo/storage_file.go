package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tempPrefix starts the names of files being written; List skips them and
// RemoveStale deletes the old ones.
const tempPrefix = ".tmp-"

// fileStorage keeps each object as a file under root, named by the
// object's name. Put writes a temporary file in the same directory, syncs
// it, renames it into place and syncs the directory, so an object appears
// whole or not at all and stays after a crash.
type fileStorage struct {
	root string
	url  string
}

var (
	_ Storage        = (*fileStorage)(nil)
	_ bufferedGetter = (*fileStorage)(nil)
	_ staleCleaner   = (*fileStorage)(nil)
)

func newFileStorage(loc Location) *fileStorage {
	return &fileStorage{root: loc.Path, url: loc.String()}
}

func (s *fileStorage) URL() string { return s.url }

func (s *fileStorage) fail(op, name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return &StorageError{Op: op, URL: s.url, Name: name, Err: err}
}

func (s *fileStorage) path(name string) string {
	return filepath.Join(s.root, filepath.FromSlash(name))
}

func (s *fileStorage) Put(ctx context.Context, name string, data []byte) error {
	if err := checkName(s.url, "put", name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return s.fail("put", name, err)
	}
	dst := s.path(name)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil { //nolint:gosec // G703: object names are checked by checkName (no "..", no empty segments), so paths stay under the repository root
		return s.fail("put", name, err)
	}
	if err := writeFileAtomic(dir, dst, data); err != nil {
		return s.fail("put", name, err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file in dir, syncs it and
// renames it to dst, then syncs dir. On failure the temporary file is
// removed.
func writeFileAtomic(dir, dst string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tempPrefix+filepath.Base(dst)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name()) //nolint:gosec // G703: object names are checked by checkName (no "..", no empty segments), so paths stay under the repository root
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), dst); err != nil { //nolint:gosec // G703: object names are checked by checkName (no "..", no empty segments), so paths stay under the repository root
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir) //nolint:gosec // G703: the directory of a checked object name, or of the key file the caller chose
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *fileStorage) Get(ctx context.Context, name string) ([]byte, error) {
	if err := checkName(s.url, "get", name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, s.fail("get", name, err)
	}
	data, err := os.ReadFile(s.path(name))
	if err != nil {
		return nil, s.fail("get", name, err)
	}
	return data, nil
}

// GetBuffer is Get into buf (grown as needed).
func (s *fileStorage) GetBuffer(ctx context.Context, name string, buf []byte) ([]byte, error) {
	if err := checkName(s.url, "get", name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, s.fail("get", name, err)
	}
	f, err := os.Open(s.path(name))
	if err != nil {
		return nil, s.fail("get", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, s.fail("get", name, err)
	}
	n := int(fi.Size())
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, s.fail("get", name, fmt.Errorf("read: %w", err))
	}
	return buf, nil
}

func (s *fileStorage) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	if err := checkName(s.url, "stat", name); err != nil {
		return ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, s.fail("stat", name, err)
	}
	fi, err := os.Stat(s.path(name)) //nolint:gosec // G703: the name was checked by checkName above, so the path stays under the repository root
	if err != nil {
		return ObjectInfo{}, s.fail("stat", name, err)
	}
	if !fi.Mode().IsRegular() {
		return ObjectInfo{}, s.fail("stat", name, fmt.Errorf("%w: not a regular file", ErrNotFound))
	}
	return ObjectInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

func (s *fileStorage) Delete(ctx context.Context, name string) error {
	if err := checkName(s.url, "delete", name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return s.fail("delete", name, err)
	}
	err := os.Remove(s.path(name)) //nolint:gosec // G703: object names are checked by checkName (no "..", no empty segments), so paths stay under the repository root
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.fail("delete", name, err)
	}
	return nil
}

// List walks the deepest directory that the prefix names completely and
// reports the regular files under it whose names start with prefix.
func (s *fileStorage) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	start := s.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = s.path(prefix[:i])
	}
	err := s.walk(ctx, start, func(name string, d fs.DirEntry) error {
		if strings.HasPrefix(d.Name(), tempPrefix) || !strings.HasPrefix(name, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while listing
		}
		if err != nil {
			return err
		}
		return fn(ObjectInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()})
	})
	if err != nil {
		return s.fail("list", prefix, err)
	}
	return nil
}

// walk calls fn for every regular file under start, with its object name.
// A missing start is an empty listing.
func (s *fileStorage) walk(ctx context.Context, start string, fn func(name string, d fs.DirEntry) error) error {
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error { //nolint:gosec // G703: object names are checked by checkName (no "..", no empty segments), so paths stay under the repository root
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(rel), d)
	})
	return err
}

// RemoveStale deletes the temporary files of Puts that never finished and
// were last written before the given time.
func (s *fileStorage) RemoveStale(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := s.walk(ctx, s.root, func(name string, d fs.DirEntry) error {
		if !strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil || !fi.ModTime().Before(before) {
			return nil //nolint:nilerr // a file that vanished or is fresh is left alone
		}
		if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, s.fail("remove stale", "", err)
	}
	return n, nil
}
