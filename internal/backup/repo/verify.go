package repo

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
)

// Report is the result of Verify.
type Report struct {
	Backup string
	// Files and Bytes count the files checked and their total size;
	// Chunks the distinct chunks read.
	Files  int
	Chunks int
	Bytes  int64
	// BadChunks lists each chunk that is missing or fails its checks, with
	// the files that use it, sorted by ID.
	BadChunks []BadChunk
	// BadFiles lists each file that cannot be restored intact: it uses a
	// bad chunk, or its size or SHA-256 differs from the manifest.
	BadFiles []BadFile
}

// BadChunk is a chunk that Verify could not read back intact.
type BadChunk struct {
	ID    ChunkID
	Err   string
	Files []string
}

// BadFile is a file that Verify could not read back intact.
type BadFile struct {
	Name string
	Err  string
}

// OK reports whether the backup verified clean.
func (rep Report) OK() bool { return len(rep.BadChunks) == 0 && len(rep.BadFiles) == 0 }

// Verify reads back every chunk of the backup with this ID, checking each
// (authentication tag, ID, size) and each file's size and SHA-256. Faults
// of the stored data go into the Report; the error is for failures that
// stop the check itself (the manifest cannot be read, the storage is
// unreachable, ctx ends).
func (r *Repo) Verify(ctx context.Context, id string) (Report, error) {
	m, err := r.Get(ctx, id)
	if err != nil {
		return Report{}, fmt.Errorf("verify: %w", err)
	}
	return r.VerifyManifest(ctx, m)
}

// VerifyManifest is Verify for a manifest already read. It holds a shared
// lock while it reads, so no other process prunes meanwhile.
func (r *Repo) VerifyManifest(ctx context.Context, m Manifest) (rep Report, err error) {
	rep = Report{Backup: m.ID}
	ctx, done, err := r.readOp(ctx, "verify")
	if err != nil {
		return rep, fmt.Errorf("verify backup %s: %w", m.ID, err)
	}
	defer done()
	defer func() { err = lockCause(ctx, err) }()
	bad := map[ChunkID]*BadChunk{}
	seen := map[ChunkID]bool{}
	zeros := &zeroSet{}
	for i := range m.Files {
		f := &m.Files[i]
		ferr, err := r.verifyFile(ctx, f, zeros, bad, seen)
		if err != nil {
			return rep, fmt.Errorf("verify backup %s: file %q: %w", m.ID, f.Name, err)
		}
		if ferr != "" {
			rep.BadFiles = append(rep.BadFiles, BadFile{Name: f.Name, Err: ferr})
		}
		rep.Files++
		rep.Bytes += f.Size
	}
	rep.Chunks = len(seen)
	for _, b := range bad {
		rep.BadChunks = append(rep.BadChunks, *b)
	}
	slices.SortFunc(rep.BadChunks, func(a, b BadChunk) int { return cmp.Compare(a.ID.String(), b.ID.String()) })
	return rep, nil
}

// verifyFile streams one file's chunks. It returns what is wrong with the
// file ("" if nothing), recording bad chunks in bad, or an error that stops
// the verification.
func (r *Repo) verifyFile(ctx context.Context, f *File, zeros *zeroSet, bad map[ChunkID]*BadChunk, seen map[ChunkID]bool) (string, error) {
	s := r.streamChunks(ctx, f.Chunks, zeros)
	defer s.close()
	h := sha256.New()
	var size int64
	var firstBad string
	for {
		c, ok := s.next()
		if !ok {
			break
		}
		seen[c.ref.ID] = true
		switch {
		case c.err != nil && !isChunkFault(c.err):
			return "", c.err
		case c.err != nil:
			b := bad[c.ref.ID]
			if b == nil {
				b = &BadChunk{ID: c.ref.ID, Err: c.err.Error()}
				bad[c.ref.ID] = b
			}
			if !slices.Contains(b.Files, f.Name) {
				b.Files = append(b.Files, f.Name)
			}
			if firstBad == "" {
				firstBad = c.err.Error()
			}
		case c.zero:
			hashZeros(h, c.ref.Size)
		default:
			h.Write(c.data)
		}
		s.release(c)
		size += c.ref.Size
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if firstBad != "" {
		return firstBad, nil
	}
	if err := checkEnd(f, size, h); err != nil {
		return err.Error(), nil
	}
	return "", nil
}
