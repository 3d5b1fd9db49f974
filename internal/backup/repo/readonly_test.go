package repo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"
)

// writeRefused is a Storage that refuses every write, as storage reached with read-only
// credentials does.
type writeRefused struct {
	Storage
	writes int
}

var errRefused = errors.New("access denied: read-only credentials")

func (w *writeRefused) Put(context.Context, string, []byte) error { w.writes++; return errRefused }
func (w *writeRefused) Delete(context.Context, string) error      { w.writes++; return errRefused }

// TestReadOnly: a Repo opened read-only on storage it cannot write to lists, restores and
// verifies (taking no lock), and refuses with ErrReadOnly, before writing anything, what
// would write: a backup, a delete, a prune, GC and removing locks. The same storage
// opened for writing cannot even restore: its lock cannot be written.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			r, url, key := newRepo(t, b)
			data := bytes.Repeat([]byte("strata read-only "), 100_000)
			w := r.NewBackup(Meta{Group: "g", Workloads: []string{"db"}})
			if err := w.AddBytes(ctx, "disk", data, 0o600); err != nil {
				t.Fatal(err)
			}
			m, err := w.Commit(ctx)
			if err != nil {
				t.Fatal(err)
			}

			st, err := OpenStorage(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			ro := &writeRefused{Storage: st}
			rr, err := OpenStorageRepo(ctx, ro, key, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			list, err := rr.List(ctx)
			if err != nil || len(list) != 1 || list[0].ID != m.ID {
				t.Fatalf("List = %+v, %v; want %s", list, err, m.ID)
			}
			out := filepath.Join(t.TempDir(), "disk")
			if err := rr.Restore(ctx, list[0], "disk", out); err != nil {
				t.Fatalf("restore read-only: %v", err)
			}
			if rep, err := rr.Verify(ctx, m.ID); err != nil || !rep.OK() {
				t.Fatalf("verify read-only: %+v, %v", rep, err)
			}
			f, err := rr.OpenFile(ctx, list[0], "disk")
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(f)
			_ = f.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, %v; want the %d written", len(got), err, len(data))
			}

			nb := rr.NewBackup(Meta{Group: "g"})
			errIs(t, nb.AddBytes(ctx, "x", []byte("x"), 0o600), ErrReadOnly)
			nb.Abort()
			errIs(t, rr.Delete(ctx, m.ID), ErrReadOnly)
			_, err = rr.Prune(ctx, Retention{KeepLast: 1}, time.Now())
			errIs(t, err, ErrReadOnly)
			_, err = rr.GC(ctx, time.Now(), 0)
			errIs(t, err, ErrReadOnly)
			_, err = rr.RemoveStaleLocks(ctx)
			errIs(t, err, ErrReadOnly)
			errIs(t, rr.RemoveLock(ctx, "0123"), ErrReadOnly)
			if ro.writes != 0 {
				t.Errorf("the read-only Repo tried %d writes", ro.writes)
			}

			rw, err := OpenStorageRepo(ctx, ro, key, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := rw.Restore(ctx, list[0], "disk", filepath.Join(t.TempDir(), "disk")); !errors.Is(err, errRefused) {
				t.Errorf("restore through a Repo opened for writing on read-only storage: %v, want its lock refused", err)
			}
		})
	}
}
