package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/restic/chunker"
)

// Writer builds one backup: AddFile for each file, then Commit (or Abort).
// It is not safe for concurrent use; files are added one after another.
// A file name AddFile refuses (ErrInvalid, ErrExists) leaves the Writer as
// it was; after any other error it is spent: Commit returns that error and
// the backup does not exist.
type Writer struct {
	r     *Repo
	meta  Meta
	id    string
	time  time.Time
	files []File
	names map[string]bool
	err   error
	done  bool

	started bool
	lock    *repoLock // the repository's shared lock, from start to Commit or Abort
	begin   time.Time
	chunker *chunker.Chunker
	bufs    chan []byte // free chunk buffers; their number bounds memory

	mu    sync.Mutex // guards known and stats, shared with upload workers
	known map[ChunkID]struct{}
	stats BackupStats
}

// NewBackup starts a backup with the caller's Meta. Its time is now (the
// Options.Now clock) and its ID random. Nothing is stored until AddFile,
// which takes a shared lock on the repository: it fails with ErrLocked
// while another process prunes. Every Writer must end with Commit or
// Abort: until then it holds its lock, which keeps other processes from
// deleting, and it holds back garbage collection in this process.
func (r *Repo) NewBackup(meta Meta) *Writer {
	var b [backupIDLen / 2]byte
	_, err := rand.Read(b[:])
	return &Writer{
		r:     r,
		meta:  meta,
		id:    hex.EncodeToString(b[:]),
		time:  r.opts.Now().UTC(),
		names: map[string]bool{},
		err:   err,
	}
}

// SetMeta replaces the Meta NewBackup was given, for a caller that learns it
// only after the first file.
func (w *Writer) SetMeta(meta Meta) { w.meta = meta }

// ID returns the ID the backup will have.
func (w *Writer) ID() string { return w.id }

// Time returns the time the backup will have.
func (w *Writer) Time() time.Time { return w.time }

// errWriterDone is the error of using a Writer after Commit or Abort.
var errWriterDone = errors.New("backup already committed or aborted")

// start takes the writer's side of the GC exclusion and a shared lock on
// the repository, and lists the chunks already stored, once per Writer.
func (w *Writer) start(ctx context.Context) error {
	if w.started {
		return nil
	}
	if err := w.r.exclude.lockWriter(ctx); err != nil {
		return fmt.Errorf("wait for garbage collection to finish: %w", err)
	}
	l, err := w.r.lock(ctx, "backup", false)
	if err != nil {
		w.r.exclude.unlockShared()
		return err
	}
	w.lock = l
	w.started = true
	w.begin = time.Now()
	ctx, unbind := l.bind(ctx)
	defer unbind()
	known := map[ChunkID]struct{}{}
	err = w.r.st.List(ctx, chunksPrefix, func(oi ObjectInfo) error {
		var id ChunkID
		base := oi.Name[strings.LastIndexByte(oi.Name, '/')+1:]
		if id.UnmarshalText([]byte(base)) == nil && id.objectName() == oi.Name {
			known[id] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return lockCause(ctx, fmt.Errorf("list stored chunks: %w", err))
	}
	w.known = known
	w.chunker = chunker.NewWithBoundaries(nil, w.r.pol, w.r.cfg.Chunker.MinSize, w.r.cfg.Chunker.MaxSize)
	w.bufs = make(chan []byte, w.r.opts.Workers+2)
	for range cap(w.bufs) {
		w.bufs <- nil // allocated on first use, from chunkBufs
	}
	return nil
}

// chunkBufs holds chunk-sized buffers for Writers, and sealBufs the
// buffers upload workers compress and seal into, so that successive files
// and backups reuse them.
var (
	chunkBufs = sync.Pool{New: func() any { b := make([]byte, 0, maxChunkSize); return &b }}
	sealBufs  sync.Pool // of *sealBuffers
)

type sealBuffers struct{ sealed, scratch []byte }

// takeBuf waits for a free chunk buffer (their number bounds the memory
// a Writer uses) or for ctx to end.
func (w *Writer) takeBuf(ctx context.Context) ([]byte, bool) {
	select {
	case buf := <-w.bufs:
		if buf == nil {
			buf = (*chunkBufs.Get().(*[]byte))[:0]
		}
		return buf, true
	case <-ctx.Done():
		return nil, false
	}
}

// releaseBufs hands the Writer's chunk buffers back to the pool.
func (w *Writer) releaseBufs() {
	for range cap(w.bufs) {
		if buf := <-w.bufs; buf != nil {
			chunkBufs.Put(&buf)
		}
	}
}

// checkFileName says why name cannot be a file name of this backup.
func (w *Writer) checkFileName(name string) error {
	switch {
	case name == "" || len(name) > 4096 || !utf8.ValidString(name) || strings.ContainsRune(name, 0):
		return fmt.Errorf("%w: file name %q: want 1 to 4096 bytes of UTF-8 without NUL", ErrInvalid, name)
	case w.names[name]:
		return fmt.Errorf("%w: file %q is already in this backup", ErrExists, name)
	}
	return nil
}

// AddFile reads r to its end and stores its content as the backup's file
// name, with mode. The content is cut into chunks; chunks the repository
// already holds (from earlier backups, or runs of zeros) are referenced,
// not uploaded again. When AddFile returns nil every new chunk of the file
// is durable.
func (w *Writer) AddFile(ctx context.Context, name string, r io.Reader, mode fs.FileMode) error {
	if w.done {
		return fmt.Errorf("backup %s: add %q: %w", w.id, name, errWriterDone)
	}
	if w.err != nil {
		return w.err
	}
	if err := w.checkFileName(name); err != nil {
		return fmt.Errorf("backup %s: add file: %w", w.id, err)
	}
	err := w.start(ctx)
	if err == nil {
		err = w.addFile(ctx, name, mode, onePart(r))
	}
	if err != nil {
		w.err = fmt.Errorf("backup %s: file %q: %w", w.id, name, err)
		return w.err
	}
	return nil
}

// AddBytes stores data as the backup's file name, like AddFile.
func (w *Writer) AddBytes(ctx context.Context, name string, data []byte, mode fs.FileMode) error {
	return w.AddFile(ctx, name, bytes.NewReader(data), mode)
}

// uploadJob is one chunk for a worker: its index in the file and content.
type uploadJob struct {
	idx  int
	data []byte
}

// Part is one piece of a file that AddParts stores: either Data, read to its
// end and cut into chunks that start at the part's first byte, or Reuse,
// chunks of an earlier backup taken as they are, without reading them.
type Part struct {
	Data  io.Reader
	Reuse []ChunkRef
	// Chunks, when set, receives the chunks Data was cut into (their IDs
	// filled in once AddParts returns nil), for a later backup to Reuse.
	Chunks *[]ChunkRef
}

// Has says whether the repository holds every chunk of refs, so that
// AddParts can reuse them. It takes the Writer's lock like AddFile.
func (w *Writer) Has(ctx context.Context, refs []ChunkRef) (bool, error) {
	if w.done {
		return false, errWriterDone
	}
	if w.err != nil {
		return false, w.err
	}
	if err := w.start(ctx); err != nil {
		w.err = fmt.Errorf("backup %s: %w", w.id, err)
		return false, w.err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ref := range refs {
		if _, ok := w.known[ref.ID]; !ok {
			return false, nil
		}
	}
	return true, nil
}

// AddParts stores the parts next returns, in order, as the backup's file
// name (next returns ok false after the last one). Each Data part is
// chunked on its own, so that a part that comes back unchanged in a later
// backup is the same chunks; a Reuse part must name chunks the repository
// holds (Has). A file with a Reuse part has no SHA-256 in the manifest.
// Errors are AddFile's.
func (w *Writer) AddParts(ctx context.Context, name string, mode fs.FileMode, next func() (Part, bool, error)) error {
	if w.done {
		return fmt.Errorf("backup %s: add %q: %w", w.id, name, errWriterDone)
	}
	if w.err != nil {
		return w.err
	}
	if err := w.checkFileName(name); err != nil {
		return fmt.Errorf("backup %s: add file: %w", w.id, err)
	}
	err := w.start(ctx)
	if err == nil {
		err = w.addFile(ctx, name, mode, next)
	}
	if err != nil {
		w.err = fmt.Errorf("backup %s: file %q: %w", w.id, name, err)
		return w.err
	}
	return nil
}

// onePart is AddFile's content as AddParts' single part.
func onePart(r io.Reader) func() (Part, bool, error) {
	done := false
	return func() (Part, bool, error) {
		if done {
			return Part{}, false, nil
		}
		done = true
		return Part{Data: r}, true, nil
	}
}

func (w *Writer) addFile(ctx context.Context, name string, mode fs.FileMode, next func() (Part, bool, error)) error {
	// A lost lock stops the upload: its cause is the lock's reason.
	ctx, unbind := w.lock.bind(ctx)
	defer unbind()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var (
		refsMu sync.Mutex
		refs   []ChunkRef
	)
	jobs := make(chan uploadJob)
	var wg sync.WaitGroup
	for range w.r.opts.Workers {
		wg.Go(func() {
			sb, _ := sealBufs.Get().(*sealBuffers)
			if sb == nil {
				sb = &sealBuffers{}
			}
			defer sealBufs.Put(sb)
			for job := range jobs {
				var id ChunkID
				var err error
				id, sb.sealed, sb.scratch, err = w.upload(ctx, job.data, sb.sealed, sb.scratch)
				w.bufs <- job.data[:0]
				if err != nil {
					cancel(err)
					continue
				}
				refsMu.Lock()
				refs[job.idx].ID = id
				refsMu.Unlock()
			}
		})
	}

	hash := sha256.New()
	var size, reused int64
	// spans records which refs each part with a Chunks destination got.
	type span struct {
		dst        *[]ChunkRef
		start, end int
	}
	var spans []span
	// chunkPart cuts one Data part into chunks and hands them to the workers.
	chunkPart := func(r io.Reader) error {
		w.chunker.ResetWithBoundaries(io.TeeReader(ctxReader{ctx, r}, hash), w.r.pol, w.r.cfg.Chunker.MinSize, w.r.cfg.Chunker.MaxSize)
		w.chunker.SetAverageBits(w.r.cfg.Chunker.AvgBits)
		for {
			buf, ok := w.takeBuf(ctx)
			if !ok {
				return nil // a worker failed; its cause is reported below
			}
			c, err := w.chunker.Next(buf)
			if errors.Is(err, io.EOF) {
				w.bufs <- buf
				return nil
			}
			if err != nil {
				w.bufs <- buf
				return fmt.Errorf("read: %w", err)
			}
			size += int64(c.Length)
			refsMu.Lock()
			idx := len(refs)
			refs = append(refs, ChunkRef{Size: int64(c.Length)})
			refsMu.Unlock()
			select {
			case jobs <- uploadJob{idx: idx, data: c.Data}:
			case <-ctx.Done():
				w.bufs <- c.Data
				return nil
			}
		}
	}
	readErr := func() error {
		for ctx.Err() == nil {
			p, ok, err := next()
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if p.Data == nil {
				w.mu.Lock()
				for _, ref := range p.Reuse {
					if _, have := w.known[ref.ID]; !have {
						w.mu.Unlock()
						return fmt.Errorf("%w: reused chunk %s is not in the repository", ErrInvalid, ref.ID)
					}
				}
				w.stats.ChunksReused += len(p.Reuse)
				w.mu.Unlock()
				refsMu.Lock()
				for _, ref := range p.Reuse {
					refs = append(refs, ref)
					size += ref.Size
					reused += ref.Size
				}
				refsMu.Unlock()
				continue
			}
			refsMu.Lock()
			start := len(refs)
			refsMu.Unlock()
			if err := chunkPart(p.Data); err != nil {
				return err
			}
			if p.Chunks != nil {
				refsMu.Lock()
				spans = append(spans, span{p.Chunks, start, len(refs)})
				refsMu.Unlock()
			}
		}
		return nil
	}()
	close(jobs)
	wg.Wait()
	// A worker's failure cancels ctx, which the reader then reports as
	// its own; the worker's cause is the one to return.
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	for _, s := range spans {
		*s.dst = slices.Clone(refs[s.start:s.end])
	}
	sum := hex.EncodeToString(hash.Sum(nil))
	if reused > 0 {
		sum = ""
	}
	w.files = append(w.files, File{
		Name:   name,
		Mode:   mode,
		Size:   size,
		SHA256: sum,
		Chunks: refs,
	})
	w.names[name] = true
	w.mu.Lock()
	w.stats.BytesRead += size
	w.stats.BytesReused += reused
	w.mu.Unlock()
	return nil
}

// upload computes the chunk's ID and stores it unless the repository
// already has it (or another worker of this Writer is storing it).
func (w *Writer) upload(ctx context.Context, data, sealed, scratch []byte) (ChunkID, []byte, []byte, error) {
	id := w.r.seal.chunkID(data)
	w.mu.Lock()
	_, have := w.known[id]
	if have {
		w.stats.ChunksReused++
	} else {
		w.known[id] = struct{}{}
	}
	w.mu.Unlock()
	if have {
		return id, sealed, scratch, nil
	}
	name := id.objectName()
	sealed, scratch, err := w.r.seal.seal(sealed[:0], scratch, data, []byte(id.String()), true)
	if err != nil {
		return id, sealed, scratch, fmt.Errorf("seal chunk %s: %w", id, err)
	}
	if err := w.r.st.Put(ctx, name, sealed); err != nil {
		return id, sealed, scratch, err
	}
	w.mu.Lock()
	w.stats.ChunksNew++
	w.stats.BytesNew += int64(len(data))
	w.stats.BytesStoredNew += int64(len(sealed))
	w.mu.Unlock()
	return id, sealed, scratch, nil
}

// Commit writes the backup's manifest, which makes the backup exist, and
// returns it. It is the last write of a backup: every chunk is durable
// before it. On error nothing is listed, and the chunks already stored are
// left for the next backup to reuse or for GC.
func (w *Writer) Commit(ctx context.Context) (Manifest, error) {
	if w.done {
		return Manifest{}, fmt.Errorf("backup %s: commit: %w", w.id, errWriterDone)
	}
	defer w.Abort()
	if w.err != nil {
		return Manifest{}, w.err
	}
	if err := w.start(ctx); err != nil {
		return Manifest{}, fmt.Errorf("backup %s: commit: %w", w.id, err)
	}
	// The manifest goes out only while the lock holds: a lost lock means a
	// prune may have deleted chunks this backup reuses.
	if err := w.lock.check(ctx); err != nil {
		return Manifest{}, fmt.Errorf("backup %s: commit: %w", w.id, err)
	}
	ctx, unbind := w.lock.bind(ctx)
	defer unbind()
	w.mu.Lock()
	stats := w.stats
	w.mu.Unlock()
	stats.Duration = time.Since(w.begin)
	m := Manifest{
		Format: FormatVersion,
		ID:     w.id,
		Time:   w.time,
		Meta:   w.meta,
		Files:  w.files,
		Stats:  stats,
	}
	if m.Files == nil {
		m.Files = []File{}
	}
	if err := w.r.putManifest(ctx, &m); err != nil {
		return Manifest{}, fmt.Errorf("backup %s: commit: %w", w.id, lockCause(ctx, err))
	}
	return m, nil
}

// Abort gives the backup up and releases the Writer's lock. Nothing is
// listed; chunks already stored stay for the next backup to reuse or for
// GC. Abort after Commit does nothing.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	if w.started {
		if w.bufs != nil {
			w.releaseBufs()
		}
		w.lock.release()
		w.r.exclude.unlockShared()
	}
	w.known = nil
}

// ctxReader fails reads once ctx ends, so that a long file stops at the
// next read after cancellation.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ReadChunks returns the content of refs, chunks the repository holds (Has), in
// order: the piece of an earlier backup's file that this backup rebuilds around a
// change. Each chunk is checked as it arrives. The Writer's lock keeps the chunks
// from being pruned meanwhile.
func (w *Writer) ReadChunks(ctx context.Context, refs []ChunkRef) ([]byte, error) {
	if ok, err := w.Has(ctx, refs); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%w: a chunk to read is not in the repository", ErrNotFound)
		}
		return nil, fmt.Errorf("backup %s: %w", w.id, err)
	}
	ctx, unbind := w.lock.bind(ctx)
	defer unbind()
	var size int64
	for _, ref := range refs {
		size += ref.Size
	}
	out := make([]byte, 0, size)
	s := w.r.streamChunks(ctx, refs, &zeroSet{})
	defer s.close()
	for {
		c, ok := s.next()
		if !ok {
			break
		}
		if c.err != nil {
			return nil, fmt.Errorf("backup %s: read chunk %s: %w", w.id, c.ref.ID, lockCause(ctx, c.err))
		}
		if c.zero {
			out = append(out, make([]byte, c.ref.Size)...)
		} else {
			out = append(out, c.data...)
		}
		s.release(c)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if int64(len(out)) != size {
		return nil, fmt.Errorf("backup %s: read %d bytes of chunks, want %d", w.id, len(out), size)
	}
	return out, nil
}
