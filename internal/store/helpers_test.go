package store

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// testTime is the fixed clock of the tests.
var testTime = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func testClock() time.Time { return testTime }

// openTemp opens a new store in a test directory and closes it at the end.
func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = testClock
	}
	s, err := Open(filepath.Join(t.TempDir(), "strata.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// object builds an Object with spec as JSON text ("" for none).
func object(kind, name, spec string) Object {
	o := Object{Kind: kind, Name: name}
	if spec != "" {
		o.Spec = json.RawMessage(spec)
	}
	return o
}

func mustCreate(t testing.TB, s *Store, o Object) Object {
	t.Helper()
	got, err := s.Create(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func mustGet(t testing.TB, s *Store, kind, name string) Object {
	t.Helper()
	got, err := s.Get(context.Background(), kind, name)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// checkErr fails unless err wraps want (nil: no error).
func checkErr(t testing.TB, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("error = %v, want one wrapping %q", err, want)
	}
}

// checkConsistent runs bbolt's consistency check over the whole file.
func checkConsistent(t testing.TB, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatalf("store %s fails bbolt's consistency check: %v", s.path, err)
	}
}
