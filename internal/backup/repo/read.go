package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// fileError wraps err with the backup and the file it concerns.
func fileError(m *Manifest, name string, err error) error {
	return fmt.Errorf("backup %s: file %q: %w", m.ID, name, err)
}

func (r *Repo) lookupFile(m *Manifest, name string) (*File, error) {
	f, ok := m.File(name)
	if !ok {
		return nil, fileError(m, name, fmt.Errorf("%w: no such file in the backup", ErrNotFound))
	}
	return f, nil
}

// checkEnd compares what was read of a file with its manifest entry.
func checkEnd(f *File, size int64, h hash.Hash) error {
	if size != f.Size {
		return fmt.Errorf("%w: read %d bytes, manifest says %d", ErrCorrupt, size, f.Size)
	}
	if f.SHA256 == "" {
		return nil // a file built with reused chunks (AddParts): each chunk was checked
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("%w: content has SHA-256 %s, manifest says %s", ErrCorrupt, got, f.SHA256)
	}
	return nil
}

// OpenFile streams the content of the backup's file name. Chunks are
// fetched in order, a few ahead, and each is checked as it arrives; at the
// end the size and SHA-256 are checked. Read returns the first failure,
// naming the backup, the file and the chunk (ErrCorrupt for bad data).
// Since a fault may surface only at the end, a caller must not act on the
// content before Read has returned io.EOF. The reader holds a shared lock
// on the repository until Close, so no other process prunes meanwhile.
func (r *Repo) OpenFile(ctx context.Context, m Manifest, name string) (io.ReadCloser, error) {
	f, err := r.lookupFile(&m, name)
	if err != nil {
		return nil, err
	}
	ctx, done, err := r.readOp(ctx, "restore")
	if err != nil {
		return nil, fileError(&m, name, err)
	}
	return &fileReader{
		m:      &m,
		f:      f,
		ctx:    ctx,
		stream: r.streamChunks(ctx, f.Chunks, &zeroSet{}),
		hash:   sha256.New(),
		done:   done,
	}, nil
}

type fileReader struct {
	m      *Manifest
	f      *File
	ctx    context.Context // ends when the reader's lock is lost
	done   func()          // releases the lock
	stream *chunkStream
	hash   hash.Hash
	cur    fetched // the chunk being read
	off    int64   // read position within cur
	size   int64   // bytes returned so far
	err    error   // sticky: io.EOF or the failure
	closed bool
}

func (fr *fileReader) Read(p []byte) (int, error) {
	for fr.err == nil && fr.off >= fr.cur.ref.Size {
		fr.stream.release(fr.cur)
		fr.cur, fr.off = fetched{}, 0
		next, ok := fr.stream.next()
		if !ok {
			fr.err = io.EOF
			if err := checkEnd(fr.f, fr.size, fr.hash); err != nil {
				fr.err = fileError(fr.m, fr.f.Name, err)
			}
			break
		}
		if next.err != nil {
			fr.err = fileError(fr.m, fr.f.Name, lockCause(fr.ctx, next.err))
			break
		}
		fr.cur = next
	}
	if fr.err != nil {
		return 0, fr.err
	}
	n := int(min(int64(len(p)), fr.cur.ref.Size-fr.off))
	if fr.cur.zero {
		clear(p[:n])
	} else {
		copy(p, fr.cur.data[fr.off:fr.off+int64(n)])
	}
	fr.hash.Write(p[:n])
	fr.off += int64(n)
	fr.size += int64(n)
	return n, nil
}

func (fr *fileReader) Close() error {
	if !fr.closed {
		fr.closed = true
		fr.stream.release(fr.cur)
		fr.stream.close()
		fr.done()
	}
	return nil
}

// sparseBlock is the granularity at which RestoreTo skips zeros.
const sparseBlock = 64 << 10

// RestoreTo writes the backup's file name to dst at offset 0, sparsely:
// runs of zeros (whole zero chunks, and zero 64 KiB blocks within chunks)
// are not written, so dst must read as zeros wherever it is not written (a
// new or truncated file). If dst has a Truncate(int64) error method (an
// *os.File does), it is called with the file's size, so a file that ends
// in zeros gets its full length. Size and SHA-256 are checked at the end;
// on a mismatch or a bad chunk the error names the backup and the file,
// and dst holds partial content. It holds a shared lock on the repository
// while it reads, so no other process prunes meanwhile.
func (r *Repo) RestoreTo(ctx context.Context, m Manifest, name string, dst io.WriterAt) (err error) {
	f, err := r.lookupFile(&m, name)
	if err != nil {
		return err
	}
	ctx, done, err := r.readOp(ctx, "restore")
	if err != nil {
		return fileError(&m, name, err)
	}
	defer done()
	defer func() { err = lockCause(ctx, err) }()
	s := r.streamChunks(ctx, f.Chunks, &zeroSet{})
	defer s.close()
	h := sha256.New()
	var off int64
	for {
		c, ok := s.next()
		if !ok {
			break
		}
		if c.err != nil {
			return fileError(&m, name, c.err)
		}
		if c.zero {
			hashZeros(h, c.ref.Size)
		} else {
			h.Write(c.data)
			if err := writeSparse(dst, c.data, off); err != nil {
				s.release(c)
				return fileError(&m, name, fmt.Errorf("write: %w", err))
			}
		}
		s.release(c)
		off += c.ref.Size
	}
	if err := ctx.Err(); err != nil {
		return fileError(&m, name, err)
	}
	if t, ok := dst.(interface{ Truncate(int64) error }); ok {
		if err := t.Truncate(off); err != nil {
			return fileError(&m, name, fmt.Errorf("set size: %w", err))
		}
	}
	if err := checkEnd(f, off, h); err != nil {
		return fileError(&m, name, err)
	}
	return nil
}

// writeSparse writes data at off, skipping sparseBlock-aligned blocks
// that are all zeros.
func writeSparse(dst io.WriterAt, data []byte, off int64) error {
	for len(data) > 0 {
		n := min(len(data), sparseBlock-int(off%sparseBlock))
		// Extend the run over following non-zero blocks so that large
		// stretches of data go out in one write.
		if allZero(data[:n]) {
			data, off = data[n:], off+int64(n)
			continue
		}
		for n < len(data) {
			m := min(len(data)-n, sparseBlock)
			if allZero(data[n : n+m]) {
				break
			}
			n += m
		}
		if _, err := dst.WriteAt(data[:n], off); err != nil {
			return err
		}
		data, off = data[n:], off+int64(n)
	}
	return nil
}

func hashZeros(h hash.Hash, n int64) {
	for n > 0 {
		k := min(n, int64(len(zeroBlock)))
		h.Write(zeroBlock[:k])
		n -= k
	}
}

// Restore writes the backup's file name to path, sparsely (see RestoreTo),
// with the file's permission bits (and setuid, setgid, sticky). It writes to a temporary file in path's
// directory and renames it to path only when the content checked out, so
// path is never left half-written; an existing file at path is replaced.
func (r *Repo) Restore(ctx context.Context, m Manifest, name, path string) (err error) {
	f, err := r.lookupFile(&m, name)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".restore-*")
	if err != nil {
		return fileError(&m, name, fmt.Errorf("restore to %s: %w", path, err))
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := r.RestoreTo(ctx, m, name, tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(f.Mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)); err != nil {
		return fileError(&m, name, fmt.Errorf("restore to %s: %w", path, err))
	}
	err = errors.Join(tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fileError(&m, name, fmt.Errorf("restore to %s: %w", path, err))
	}
	return nil
}
