package repo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// partsOf returns an AddParts iterator over ps.
func partsOf(ps ...Part) func() (Part, bool, error) {
	return func() (Part, bool, error) {
		if len(ps) == 0 {
			return Part{}, false, nil
		}
		p := ps[0]
		ps = ps[1:]
		return p, true, nil
	}
}

// TestAddPartsReuse stores a file of three parts, then a second backup that takes the
// middle part's chunks as they are: the restore is byte-identical, the reused bytes
// are counted and not stored again, and verify passes. A reuse of a chunk the
// repository lacks is refused.
func TestAddPartsReuse(t *testing.T) {
	ctx := context.Background()
	r, _, _ := newRepo(t, fileBackend())
	head, big, tail := randomBytes(1, 3000), randomBytes(2, 5*mib), randomBytes(3, 700)

	var bigRefs []ChunkRef
	w := r.NewBackup(Meta{Workloads: []string{"c1"}, Kind: "test"})
	if err := w.AddParts(ctx, "v.tar", 0o600, partsOf(Part{Data: bytes.NewReader(head)},
		Part{Data: bytes.NewReader(big), Chunks: &bigRefs}, Part{Data: bytes.NewReader(tail)})); err != nil {
		t.Fatal(err)
	}
	m1, err := w.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(bigRefs) < 2 || m1.Files[0].SHA256 == "" {
		t.Fatalf("first backup: %d chunks for the big part, sha256 %q; want several and a sum", len(bigRefs), m1.Files[0].SHA256)
	}

	newHead := randomBytes(4, 3000)
	w = r.NewBackup(Meta{Workloads: []string{"c1"}, Kind: "test"})
	if ok, err := w.Has(ctx, bigRefs); err != nil || !ok {
		t.Fatalf("Has(the first backup's chunks) = %v, %v; want true", ok, err)
	}
	if err := w.AddParts(ctx, "v.tar", 0o600, partsOf(Part{Data: bytes.NewReader(newHead)},
		Part{Reuse: bigRefs}, Part{Data: bytes.NewReader(tail)})); err != nil {
		t.Fatal(err)
	}
	m2, err := w.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Stats.BytesReused != int64(len(big)) || m2.Stats.BytesNew > int64(len(newHead)+len(tail)) {
		t.Errorf("second backup: reused %d, new %d bytes; want %d reused and at most %d new",
			m2.Stats.BytesReused, m2.Stats.BytesNew, len(big), len(newHead)+len(tail))
	}
	verifyClean(t, r, m2.ID)
	rc, err := r.OpenFile(ctx, m2, "v.tar")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{}, newHead...), big...), tail...)
	if !bytes.Equal(got, want) {
		t.Fatalf("restored %d bytes differ from the %d stored", len(got), len(want))
	}

	w = r.NewBackup(Meta{Workloads: []string{"c1"}, Kind: "test"})
	defer w.Abort()
	// The chunks a backup took can be read back by a later one.
	back, err := w.ReadChunks(ctx, bigRefs)
	if err != nil || !bytes.Equal(back, big) {
		t.Fatalf("ReadChunks(the big part's chunks): %d bytes, %v; want the part", len(back), err)
	}
	missing := []ChunkRef{{ID: ChunkID{1, 2, 3}, Size: 10}}
	if _, err := w.ReadChunks(ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadChunks(an unknown chunk): %v; want ErrNotFound", err)
	}
	if ok, err := w.Has(ctx, missing); err != nil || ok {
		t.Fatalf("Has(an unknown chunk) = %v, %v; want false", ok, err)
	}
	err = w.AddParts(ctx, "v.tar", 0o600, partsOf(Part{Reuse: missing}))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("reuse of an unknown chunk: %v; want ErrInvalid", err)
	}
}
