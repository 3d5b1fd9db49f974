package store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Clock gives CreatedAt. Default time.Now.
	Clock func() time.Time
	// WatchHistory is how many recent events are kept for watchers to replay
	// and to catch up from. Default 1024.
	WatchHistory int
	// WatchHistoryBytes bounds the memory those events hold (their objects'
	// specs, statuses, labels and annotations, estimated): the oldest leave
	// first when either bound is reached. Default 64 MiB.
	WatchHistoryBytes int64
	// Logger receives the store's few log lines. Default: discarded.
	Logger *slog.Logger
	// LockTimeout is how long Open waits for another process to release the
	// file lock before it fails with ErrInUse. Default 1s.
	LockTimeout time.Duration
}

// Defaults for Options.
const (
	DefaultWatchHistory      = 1024
	DefaultWatchHistoryBytes = 64 << 20
	DefaultLockTimeout       = time.Second
)

// fileMode keeps the store private to the daemon's user.
const fileMode = 0o600

// Store is an open store file. Its methods are safe for concurrent use.
type Store struct {
	path  string
	db    *bolt.DB
	clock func() time.Time
	log   *slog.Logger

	// wmu serialises writes from the start of their transaction to the
	// publication of their event, so that events enter the history in
	// revision order.
	wmu  sync.Mutex
	rev  atomic.Uint64 // the last committed revision
	hist *history

	// mu orders watcher registration against Close.
	mu       sync.Mutex
	closed   atomic.Bool
	done     chan struct{} // closed by Close; stops the watchers
	watchers sync.WaitGroup
}

// Open opens the store at path, creating it if it does not exist. The
// directory must exist. Only one process can have a store open: if another
// holds it for longer than Options.LockTimeout, Open fails with ErrInUse.
func Open(path string, opts Options) (*Store, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.WatchHistory <= 0 {
		opts.WatchHistory = DefaultWatchHistory
	}
	if opts.WatchHistoryBytes <= 0 {
		opts.WatchHistoryBytes = DefaultWatchHistoryBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}

	created, err := createIfMissing(path)
	if err != nil {
		return nil, fmt.Errorf("create store %s: %w", path, err)
	}
	db, err := bolt.Open(path, fileMode, &bolt.Options{
		Timeout:      opts.LockTimeout,
		FreelistType: bolt.FreelistArrayType,
		// NoSync stays false: every commit is fsynced before it returns.
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("store %s is %w (its lock was not released within %s: stop the other process or use another data directory)",
			path, ErrInUse, opts.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	rev, err := prepare(db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	removeStaleTemps(path)

	s := &Store{
		path:  path,
		db:    db,
		clock: opts.Clock,
		log:   opts.Logger,
		hist:  newHistory(opts.WatchHistory, opts.WatchHistoryBytes, rev),
		done:  make(chan struct{}),
	}
	s.rev.Store(rev)
	s.log.Info("store opened", "path", path, "revision", rev, "created", created)
	return s, nil
}

// prepare checks an opened file's layout, laying it out if the file is
// empty, and returns its revision.
func prepare(db *bolt.DB) (uint64, error) {
	var empty bool
	err := db.View(func(tx *bolt.Tx) error {
		empty = tx.ForEach(func([]byte, *bolt.Bucket) error { return errStop }) == nil
		if empty {
			return nil
		}
		return checkLayout(tx)
	})
	if err == nil && empty {
		err = db.Update(initLayout)
	}
	if err != nil {
		return 0, err
	}
	var rev uint64
	err = db.View(func(tx *bolt.Tx) (err error) {
		rev, err = readRevision(tx)
		return err
	})
	return rev, err
}

var errStop = errors.New("stop")

// tempInfix marks a store file under construction: PATH.new-RANDOM.
const tempInfix = ".new-"

// createIfMissing builds a new, laid-out store file under a temporary name
// and links it into place, so that a crash leaves either no store or a
// complete one. Link, unlike rename, never replaces a file another process
// created meanwhile.
func createIfMissing(path string) (created bool, err error) {
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) { //nolint:gosec // G703: the path is the store's own file, named by the daemon's operator
		return false, nil // exists, or bolt.Open will report why not
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+tempInfix+"*")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)

	db, err := bolt.Open(tmp, fileMode, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return false, err
	}
	if err := db.Update(initLayout); err != nil {
		db.Close()
		return false, err
	}
	if err := db.Close(); err != nil {
		return false, err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil // another process won the race; use its file
		}
		return false, err
	}
	if err := os.Remove(tmp); err != nil { //nolint:gosec // G703: the path is the store's own file, named by the daemon's operator
		return false, err
	}
	return true, syncDir(dir)
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir) //nolint:gosec // G703: the path is the store's own file, named by the daemon's operator
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// removeStaleTemps deletes temporary files left by a crash during creation.
// It runs with the store's lock held, after the store file exists, so no
// creation in progress can still need them.
func removeStaleTemps(path string) {
	matches, _ := filepath.Glob(path + tempInfix + "*")
	for _, m := range matches {
		os.Remove(m) //nolint:gosec // G703: the path is the store's own file, named by the daemon's operator
	}
}

// Close stops every watch (their channels close) and closes the file. Calls
// after the first return nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Swap(true) {
		s.mu.Unlock()
		return nil
	}
	close(s.done)
	s.mu.Unlock()

	s.watchers.Wait()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// Revision returns the revision of the last acknowledged write (0 for a store
// never written).
func (s *Store) Revision() uint64 { return s.rev.Load() }

// Backup writes a consistent copy of the whole store file to w, taken in one
// read transaction: writes continue meanwhile and are not in the copy
// (one that must grow the file's memory map waits for the copy to finish).
// The copy opens with Open like the original, at the revision it was
// taken.
func (s *Store) Backup(w io.Writer) error {
	err := s.view(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(w)
		return err
	})
	if err != nil {
		return fmt.Errorf("back up store %s: %w", s.path, err)
	}
	return nil
}

// view runs fn in a read transaction, reporting a closed store as ErrClosed.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}
