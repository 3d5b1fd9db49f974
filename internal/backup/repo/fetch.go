package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
)

// readChunk fetches a chunk and checks it: the GCM tag (with the ID as
// additional data), then that the plaintext's HMAC is the ID and its size
// the size the manifest recorded. dst is reused for the plaintext.
func (r *Repo) readChunk(ctx context.Context, ref ChunkRef, dst, scratch []byte) (plain, newScratch []byte, err error) {
	sb, _ := sealBufs.Get().(*sealBuffers)
	if sb == nil {
		sb = &sealBuffers{}
	}
	defer sealBufs.Put(sb)
	var sealed []byte
	if g, ok := r.st.(bufferedGetter); ok {
		sealed, err = g.GetBuffer(ctx, ref.ID.objectName(), sb.sealed)
		if err == nil {
			sb.sealed = sealed
		}
	} else {
		sealed, err = r.st.Get(ctx, ref.ID.objectName())
	}
	if err != nil {
		return nil, scratch, fmt.Errorf("chunk %s: %w", ref.ID, err)
	}
	if scratch == nil {
		scratch = sb.scratch
		defer func() { sb.scratch = newScratch }()
	}
	plain, scratch, err = r.seal.open(dst[:0], scratch, sealed, []byte(ref.ID.String()))
	if err != nil {
		return nil, scratch, fmt.Errorf("chunk %s: %w", ref.ID, err)
	}
	if got := r.seal.chunkID(plain); got != ref.ID {
		return nil, scratch, fmt.Errorf("chunk %s: %w: content hashes to %s", ref.ID, ErrCorrupt, got)
	}
	if int64(len(plain)) != ref.Size {
		return nil, scratch, fmt.Errorf("chunk %s: %w: %d bytes, manifest says %d", ref.ID, ErrCorrupt, len(plain), ref.Size)
	}
	return plain, scratch, nil
}

// isChunkFault reports whether err is a fault of the stored chunk itself
// (missing or corrupt), as opposed to the storage being unreachable or the
// context ending.
func isChunkFault(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnsupportedFormat)
}

// fetched is one chunk delivered by a chunkStream, in file order.
type fetched struct {
	ref  ChunkRef
	data []byte // nil when zero is set or err is not nil
	zero bool   // the chunk is all zeros (data is not fetched)
	err  error
}

// chunkStream fetches the chunks of a file in order, up to workers ahead
// of the consumer. Chunks known to be all zeros are not fetched again:
// runs of zeros in disk images are many references to one chunk.
type chunkStream struct {
	out    chan chan fetched
	cancel context.CancelFunc
	done   chan struct{}
}

// zeroSet remembers chunk IDs whose content is all zeros. It is shared by
// the streams of one Verify or one restore.
type zeroSet struct {
	mu  sync.Mutex
	ids map[ChunkID]bool
}

func (z *zeroSet) has(id ChunkID) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.ids[id]
}

func (z *zeroSet) add(id ChunkID) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.ids == nil {
		z.ids = map[ChunkID]bool{}
	}
	z.ids[id] = true
}

// streamChunks starts fetching refs. The caller receives each chunk with
// next and must call close when done, even after an error.
func (r *Repo) streamChunks(ctx context.Context, refs []ChunkRef, zeros *zeroSet) *chunkStream {
	ctx, cancel := context.WithCancel(ctx)
	workers := r.opts.Workers
	s := &chunkStream{out: make(chan chan fetched, workers), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.out)
		sem := make(chan struct{}, workers)
		var wg sync.WaitGroup
		defer wg.Wait()
		for _, ref := range refs {
			res := make(chan fetched, 1)
			select {
			case s.out <- res:
			case <-ctx.Done():
				return
			}
			if zeros.has(ref.ID) {
				res <- fetched{ref: ref, zero: true}
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				res <- fetched{ref: ref, err: ctx.Err()}
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				res <- s.fetch(ctx, r, ref, zeros)
			})
		}
	}()
	return s
}

func (s *chunkStream) fetch(ctx context.Context, r *Repo, ref ChunkRef, zeros *zeroSet) fetched {
	bp := chunkBufs.Get().(*[]byte)
	data, _, err := r.readChunk(ctx, ref, *bp, nil)
	if err != nil {
		chunkBufs.Put(bp)
		return fetched{ref: ref, err: err}
	}
	if allZero(data) {
		zeros.add(ref.ID)
		*bp = data[:0]
		chunkBufs.Put(bp)
		return fetched{ref: ref, zero: true}
	}
	return fetched{ref: ref, data: data}
}

// next returns the next chunk, or ok false after the last one.
func (s *chunkStream) next() (f fetched, ok bool) {
	res, ok := <-s.out
	if !ok {
		return fetched{}, false
	}
	return <-res, true
}

// release hands a chunk's buffer back for reuse.
func (s *chunkStream) release(f fetched) {
	if f.data != nil {
		b := f.data[:0]
		chunkBufs.Put(&b)
	}
}

// close stops fetching and waits for the fetchers to finish.
func (s *chunkStream) close() {
	s.cancel()
	for res := range s.out {
		<-res
	}
	<-s.done
}

var zeroBlock [64 << 10]byte

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:n], zeroBlock[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
