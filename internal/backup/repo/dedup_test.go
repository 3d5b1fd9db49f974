package repo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestDedupDiskImage backs up a 1 GiB sparse disk image with random
// regions, changes 10 MiB in the middle and backs it up again: the second
// backup stores about the change, not the image.
func TestDedupDiskImage(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 2 GiB; skipped in -short mode")
	}
	ctx := context.Background()
	r, _, _ := newRepo(t, fileBackend())
	img := filepath.Join(t.TempDir(), "disk.qcow2")
	const size = 1 << 30
	var regions []region
	for off := int64(0); off < size; off += 32 * mib {
		regions = append(regions, region{off + 3*mib + off/64, 4 * mib}) // 128 MiB of data in all
	}
	writeSparseFile(t, img, size, 1, regions...)
	m1 := backupFiles(t, r, Meta{Workloads: []string{"vm1"}, Kind: "vm-disk"}, testFile{name: "disk", path: img, mode: 0o600})
	t.Logf("first backup:  read %d MiB, %d chunks new, %d reused, stored %d bytes in %v",
		m1.Stats.BytesRead>>20, m1.Stats.ChunksNew, m1.Stats.ChunksReused, m1.Stats.BytesStoredNew, m1.Stats.Duration)
	if m1.Stats.BytesStoredNew > 140*mib {
		t.Errorf("first backup stored %d bytes; want about the 128 MiB of data (zeros deduplicate)", m1.Stats.BytesStoredNew)
	}

	// Change 10 MiB in the middle: over a data region and the zeros after it.
	const change = 10 * mib
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(randomBytes(1000, change), size/2+5*mib); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m2 := backupFiles(t, r, Meta{Workloads: []string{"vm1"}, Kind: "vm-disk"}, testFile{name: "disk", path: img, mode: 0o600})
	t.Logf("second backup: read %d MiB, %d chunks new, %d reused, stored %d bytes (%.2f x the %d MiB changed) in %v",
		m2.Stats.BytesRead>>20, m2.Stats.ChunksNew, m2.Stats.ChunksReused, m2.Stats.BytesStoredNew,
		float64(m2.Stats.BytesStoredNew)/change, change>>20, m2.Stats.Duration)
	if m2.Stats.BytesStoredNew < change || m2.Stats.BytesStoredNew > 3*change {
		t.Errorf("second backup stored %d bytes; want between the change (%d) and 3x it", m2.Stats.BytesStoredNew, change)
	}
	verifyClean(t, r, m2.ID)
	dst := filepath.Join(t.TempDir(), "restored")
	if err := r.Restore(ctx, m2, "disk", dst); err != nil {
		t.Fatal(err)
	}
	if got, want := fileSHA(t, dst), m2.Files[0].SHA256; got != want {
		t.Fatalf("restored image sha256 %s; want %s", got, want)
	}
}

// TestDedupSimilarImages backs up two images where the second is the
// first with 5% changed in eight places: they share most chunks.
func TestDedupSimilarImages(t *testing.T) {
	r, _, _ := newRepo(t, fileBackend())
	const size = 128 * mib
	a := randomBytes(10, size)
	b := bytes.Clone(a)
	const spots, spot = 8, size / 20 / 8 // 5% in all
	for i := range spots {
		off := i*size/spots + size/32
		fillRandom(uint64(20+i), b[off:off+spot])
	}
	ma := backupFiles(t, r, Meta{Workloads: []string{"vm-a"}}, testFile{name: "disk", data: a})
	mb := backupFiles(t, r, Meta{Workloads: []string{"vm-b"}}, testFile{name: "disk", data: b})
	total := mb.Stats.ChunksNew + mb.Stats.ChunksReused
	shared := float64(mb.Stats.ChunksReused) / float64(total)
	t.Logf("image a: %d chunks; image b: %d chunks, %d shared (%.0f%%), stored %d bytes for %d changed (%.2fx)",
		ma.Stats.ChunksNew, total, mb.Stats.ChunksReused, 100*shared, mb.Stats.BytesStoredNew, spots*spot,
		float64(mb.Stats.BytesStoredNew)/float64(spots*spot))
	if shared < 0.75 {
		t.Errorf("the images share %.0f%% of chunks; want most (>= 75%%)", 100*shared)
	}
	// Each edit costs its own bytes plus the rest of the chunks it starts
	// and ends in: about one average chunk (1-2 MiB) per edit.
	if limit := spots*spot + spots*4*mib; mb.Stats.BytesStoredNew > int64(limit) {
		t.Errorf("image b stored %d bytes; want under %d (the change plus 4 MiB per edit)", mb.Stats.BytesStoredNew, limit)
	}
}
