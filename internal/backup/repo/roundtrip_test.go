package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// randomBytes returns n pseudo-random (incompressible) bytes from seed.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	fillRandom(seed, b)
	return b
}

func fillRandom(seed uint64, b []byte) {
	var s [32]byte
	s[0], s[1], s[2], s[3] = byte(seed), byte(seed>>8), byte(seed>>16), byte(seed>>24)
	s[4], s[5], s[6], s[7] = byte(seed>>32), byte(seed>>40), byte(seed>>48), byte(seed>>56)
	_, _ = rand.NewChaCha8(s).Read(b) // never fails
}

// region is a stretch of random bytes in a sparse file.
type region struct{ off, size int64 }

// writeSparse makes a sparse file of size bytes at path with random data
// at the given regions (the rest is holes), and returns its SHA-256.
func writeSparseFile(t testing.TB, path string, size int64, seed uint64, regions ...region) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for i, r := range regions {
		if _, err := f.WriteAt(randomBytes(seed+uint64(i), int(r.size)), r.off); err != nil {
			t.Fatal(err)
		}
	}
	return fileSHA(t, path)
}

func fileSHA(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestRoundTrip backs up files of assorted sizes and modes (empty, one
// byte, 5 MiB random, 64 MiB sparse) on each backend, lists and gets the
// backup, and restores every file both by Restore (to a path) and by
// OpenFile, checking content and mode.
func TestRoundTrip(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			testRoundTrip(t, b)
		})
	}
}

func testRoundTrip(t *testing.T, b backend) {
	ctx := context.Background()
	r, url, key := newRepo(t, b)
	dir := t.TempDir()
	sparse := filepath.Join(dir, "disk.img")
	sparseSHA := writeSparseFile(t, sparse, 64*mib, 7,
		region{0, 64 * kib}, region{10*mib + 12345, 3 * mib}, region{40 * mib, 1}, region{64*mib - 100, 100})
	files := []testFile{
		{name: "empty", mode: 0o600, data: []byte{}},
		{name: "one", mode: 0o644, data: []byte{42}},
		{name: "volume/data.tar", mode: 0o640, data: randomBytes(1, 5*mib)},
		{name: "disk.img", mode: 0o600 | os.ModeSetgid, path: sparse},
	}
	want := map[string]string{"empty": sha(nil), "one": sha([]byte{42}), "volume/data.tar": sha(files[2].data), "disk.img": sparseSHA}
	meta := Meta{Workloads: []string{"web"}, Kind: "vm-disk", Labels: map[string]string{"tier": "vm"}, Spec: json.RawMessage(`{"image":"debian"}`)}
	m := backupFiles(t, r, meta, files...)
	t.Logf("%s: backup %s: %+v", url, m.ID, m.Stats)

	// A fresh Open sees the backup exactly as committed.
	r2, err := Open(ctx, url, key)
	if err != nil {
		t.Fatal(err)
	}
	list, err := r2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != m.ID {
		t.Fatalf("List = %v; want the one backup %s", ids(list), m.ID)
	}
	got, err := r2.Get(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(m.Time) || got.Meta.Kind != "vm-disk" || string(got.Meta.Spec) != `{"image":"debian"}` || got.Meta.Labels["tier"] != "vm" {
		t.Fatalf("Get = %+v; want the committed manifest", got)
	}

	out := t.TempDir()
	for _, f := range files {
		mf, ok := got.File(f.name)
		if !ok || mf.SHA256 != want[f.name] || mf.Mode != f.mode {
			t.Fatalf("manifest file %q = %+v; want sha %s mode %v", f.name, mf, want[f.name], f.mode)
		}
		dst := filepath.Join(out, filepath.Base(f.name))
		if err := r2.Restore(ctx, got, f.name, dst); err != nil {
			t.Fatalf("Restore(%s): %v", f.name, err)
		}
		if s := fileSHA(t, dst); s != want[f.name] {
			t.Errorf("restored %s has sha256 %s; want %s", f.name, s, want[f.name])
		}
		fi, err := os.Stat(dst)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != f.mode {
			t.Errorf("restored %s has mode %v; want %v", f.name, fi.Mode(), f.mode)
		}
		rc, err := r2.OpenFile(ctx, got, f.name)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil || hex.EncodeToString(h.Sum(nil)) != want[f.name] {
			t.Errorf("OpenFile(%s): %v, sha256 %x; want %s", f.name, err, h.Sum(nil), want[f.name])
		}
	}
	// The restored disk image is sparse: its 4 MiB of data need far fewer
	// than its 64 MiB of blocks.
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(out, "disk.img"), &st); err != nil {
		t.Fatal(err)
	}
	if allocated := st.Blocks * 512; allocated > 16*mib {
		t.Errorf("restored disk.img allocates %d bytes; want it sparse (about 4 MiB)", allocated)
	}

	rep, err := r2.Verify(ctx, m.ID)
	if err != nil || !rep.OK() || rep.Files != 4 || rep.Bytes != 64*mib+5*mib+1 {
		t.Fatalf("Verify = %+v, %v; want a clean report of 4 files", rep, err)
	}

	// A second backup of the same content stores no new chunk.
	m2 := backupFiles(t, r2, meta, files...)
	if m2.Stats.ChunksNew != 0 || m2.Stats.BytesStoredNew != 0 {
		t.Errorf("second backup of the same files: %+v; want no new chunks", m2.Stats)
	}
}

func ids(ms []Manifest) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// TestWriterRules covers what a Writer refuses.
func TestWriterRules(t *testing.T) {
	ctx := context.Background()
	r, _, _ := newRepo(t, fileBackend())
	w := r.NewBackup(Meta{Group: "g"})
	if err := w.AddBytes(ctx, "a", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A refused name leaves the Writer usable.
	errIs(t, w.AddBytes(ctx, "a", []byte("y"), 0o600), ErrExists)
	errIs(t, w.AddBytes(ctx, "bad\x00name", []byte("y"), 0o600), ErrInvalid)
	if err := w.AddBytes(ctx, "b", []byte("y"), 0o600); err != nil {
		t.Fatal(err)
	}
	if m, err := w.Commit(ctx); err != nil || len(m.Files) != 2 {
		t.Fatalf("Commit = %+v, %v; want files a and b", m.Files, err)
	}
	// After a failure while storing, the Writer is spent.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	w = r.NewBackup(Meta{Group: "g"})
	errIs(t, w.AddBytes(cctx, "c", bytes.Repeat([]byte{1}, mib), 0), context.Canceled)
	_, err := w.Commit(ctx)
	errIs(t, err, context.Canceled)
	if ms, _ := r.List(ctx); len(ms) != 1 {
		t.Fatalf("List = %v after a failed backup; want the one good backup", ids(ms))
	}

	w = r.NewBackup(Meta{Group: "g"})
	errIs(t, w.AddBytes(ctx, "", nil, 0), ErrInvalid)
	w = r.NewBackup(Meta{Group: "g"})
	m, err := w.Commit(ctx)
	if err != nil || len(m.Files) != 0 {
		t.Fatalf("empty backup: %+v, %v", m, err)
	}
	if err := w.AddBytes(ctx, "late", nil, 0); err == nil {
		t.Fatal("AddBytes after Commit succeeded")
	}
	if _, err := w.Commit(ctx); err == nil {
		t.Fatal("second Commit succeeded")
	}

	// Files of a backup come back by name; unknown names are ErrNotFound.
	_, err = r.OpenFile(ctx, m, "nope")
	errIs(t, err, ErrNotFound)
	_, err = r.Get(ctx, "0123456789abcdef")
	errIs(t, err, ErrNotFound)
	_, err = r.Get(ctx, "../config")
	errIs(t, err, ErrInvalid)

	// Delete removes the backup from the list.
	if err := r.Delete(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if ms, _ := r.List(ctx); len(ms) != 1 {
		t.Fatalf("List = %v after Delete; want the first backup only", ids(ms))
	}
}

// TestListOrder checks that List sorts by time.
func TestListOrder(t *testing.T) {
	ctx := context.Background()
	st, err := OpenStorage(ctx, "file://"+filepath.Join(t.TempDir(), "r"))
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	key, err := InitStorage(ctx, st, Options{KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	var clock int64 = 1_700_000_000
	times := []int64{50, 10, 30, 20, 40}
	next := 0
	r, err := OpenStorageRepo(ctx, st, key, Options{Now: func() time.Time {
		d := times[next%len(times)]
		next++
		return time.Unix(clock+d, 0)
	}})
	if err != nil {
		t.Fatal(err)
	}
	for range times {
		backupFiles(t, r, Meta{Group: "g"}, testFile{name: "f", data: []byte("x")})
	}
	ms, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(ms, func(a, b Manifest) int { return a.Time.Compare(b.Time) }) || len(ms) != len(times) {
		t.Fatalf("List returned %d backups out of time order", len(ms))
	}
}
