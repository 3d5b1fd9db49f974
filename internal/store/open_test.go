package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestReopen checks that objects and the revision survive Close and Open,
// that the revision keeps counting from where it was, and that watch history
// does not survive: an old revision is too old, the current one is fine.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "strata.db")
	s, err := Open(path, Options{Clock: testClock})
	if err != nil {
		t.Fatal(err)
	}
	web := mustCreate(t, s, object("Workload", "web", `{"v":1}`))
	mustCreate(t, s, object("Segment", "default", `{}`))
	web.Spec = json.RawMessage(`{"v":2}`)
	if web, err = s.Update(ctx, web); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{Clock: testClock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Revision() != 3 {
		t.Errorf("revision after reopen = %d, want 3", s.Revision())
	}
	if got := mustGet(t, s, "Workload", "web"); !equalObjects(got, web) {
		t.Errorf("after reopen\n%+v\nwant\n%+v", got, web)
	}
	if _, err := s.Watch(ctx, "Workload", 1); !errors.Is(err, ErrTooOld) {
		t.Errorf("watch from before the restart: error = %v, want ErrTooOld", err)
	}
	w, err := s.Watch(ctx, "Workload", 3)
	if err != nil {
		t.Fatalf("watch from the current revision: %v", err)
	}
	got := mustCreate(t, s, object("Workload", "db", `{}`))
	if got.ResourceVersion != 4 {
		t.Errorf("first write after reopen has resourceVersion %d, want 4", got.ResourceVersion)
	}
	if ev := <-w; ev.Type != Added || ev.Object.Name != "db" || ev.Object.ResourceVersion != 4 {
		t.Errorf("event = %+v, want Added db at 4", ev)
	}
	checkConsistent(t, s)
}

func TestOpenInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strata.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Open(path, Options{LockTimeout: 50 * time.Millisecond})
	checkErr(t, err, ErrInUse)
	if want := "store " + path + " is in use by another strata process"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestOpenFiles(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string // "" for success
	}{
		{name: "new file", prepare: func(*testing.T, string) {}},
		{name: "existing empty file is laid out", prepare: func(t *testing.T, path string) {
			writeFile(t, path, nil)
		}},
		{name: "junk", prepare: func(t *testing.T, path string) {
			writeFile(t, path, bytes.Repeat([]byte("strata"), 2000))
		}, wantErr: "open store"},
		{name: "another program's bbolt file", prepare: func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err }); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "not a strata store"},
		{name: "newer layout", prepare: func(t *testing.T, path string) {
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("2")) }); err != nil {
				t.Fatal(err)
			}
			s.Close()
		}, wantErr: "run a newer strata"},
		{name: "missing directory", prepare: func(t *testing.T, path string) {
			os.Remove(filepath.Dir(path))
		}, wantErr: "create store"},
		{name: "stale temporary files are removed", prepare: func(t *testing.T, path string) {
			writeFile(t, path+tempInfix+"123", []byte("half-built"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "strata.db")
			tt.prepare(t, path)
			s, err := Open(path, Options{})
			if tt.wantErr != "" {
				if err == nil {
					s.Close()
					t.Fatalf("Open succeeded, want an error containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %q does not contain %q and the path", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			mustCreate(t, s, object("Workload", "web", `{}`))
			checkConsistent(t, s)
			entries, err := os.ReadDir(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != "strata.db" {
				t.Errorf("directory holds %v, want only strata.db", entries)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != fileMode {
				t.Errorf("store file mode = %v (%v), want %v", fi.Mode().Perm(), err, os.FileMode(fileMode))
			}
		})
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{})
	web := mustCreate(t, s, object("Workload", "web", `{}`))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ops := map[string]func() error{
		"create":       func() error { _, err := s.Create(ctx, object("Workload", "db", "")); return err },
		"get":          func() error { _, err := s.Get(ctx, "Workload", "web"); return err },
		"list":         func() error { _, _, err := s.List(ctx, "Workload"); return err },
		"update":       func() error { _, err := s.Update(ctx, web); return err },
		"updateStatus": func() error { _, err := s.UpdateStatus(ctx, web); return err },
		"delete":       func() error { return s.Delete(ctx, "Workload", "web", 0) },
		"watch":        func() error { _, err := s.Watch(ctx, "Workload", 1); return err },
		"backup":       func() error { return s.Backup(&bytes.Buffer{}) },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: error = %v, want ErrClosed", name, err)
		}
	}
}

// TestBackup checks that a backup, taken while the store is open, opens as
// a store with the same objects and revision.
func TestBackup(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{})
	for _, n := range []string{"a", "b", "c"} {
		mustCreate(t, s, object("Workload", n, `{"n":"`+n+`"}`))
	}
	if err := s.Delete(ctx, "Workload", "b", 0); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, object("Workload", "after-backup", `{}`))

	path := filepath.Join(t.TempDir(), "restored.db")
	writeFile(t, path, buf.Bytes())
	r, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkConsistent(t, r)
	objs, rev, err := r.List(ctx, "Workload")
	if err != nil {
		t.Fatal(err)
	}
	if rev != 4 || len(objs) != 2 || objs[0].Name != "a" || objs[1].Name != "c" {
		t.Errorf("backup holds %d objects at revision %d: %+v; want a and c at 4", len(objs), rev, objs)
	}
}
