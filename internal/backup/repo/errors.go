package repo

import (
	"errors"
	"fmt"
)

// Error kinds, wrapped with the operation, the repository's URL and the
// object, backup or file concerned. Test for them with errors.Is; only the
// API edge maps them to HTTP or exit codes.
var (
	// ErrInvalid: a URL, name, option or argument is malformed. Retrying
	// the same request cannot succeed.
	ErrInvalid = errors.New("invalid")
	// ErrReadOnly: the Repo was opened read-only (Options.ReadOnly) and
	// the operation writes (a backup, a delete, a prune, a lock removal).
	ErrReadOnly = errors.New("read-only")
	// ErrNotFound: no object, backup or file of that name.
	ErrNotFound = errors.New("not found")
	// ErrExists: Init found the location not empty, or the key file
	// already exists.
	ErrExists = errors.New("already exists")
	// ErrWrongKey: the key does not open the repository's key-check
	// object: it belongs to another repository, or the key file is not the
	// one Init wrote.
	ErrWrongKey = errors.New("wrong key")
	// ErrUnsupportedFormat: the repository was written by a newer (or
	// unknown) version of strata.
	ErrUnsupportedFormat = errors.New("unsupported repository format")
	// ErrCorrupt: stored data fails its checks: a chunk's or manifest's
	// authentication tag, a chunk whose content does not match its ID, a
	// file whose size or SHA-256 differs from its manifest.
	ErrCorrupt = errors.New("corrupt")
	// ErrLocked: another process holds a lock that conflicts with the
	// operation (a backup runs while a prune wants to delete, or the
	// other way round). The error is a *LockedError naming the holder.
	// Retry once that operation has finished.
	ErrLocked = errors.New("repository locked")
)

// StorageError is a failure of one storage operation: which operation, on
// which object, in which repository, and why (the cause is wrapped, so
// errors.Is finds syscall.ENOSPC, context.Canceled or ErrNotFound in it).
type StorageError struct {
	Op   string // "put", "get", "list", "delete", "stat", "open"
	URL  string // the repository's URL, without credentials
	Name string // the object's name, or the prefix for list
	Err  error
}

func (e *StorageError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("%s %s: %v", e.Op, e.URL, e.Err)
	}
	return fmt.Sprintf("%s %s in %s: %v", e.Op, e.Name, e.URL, e.Err)
}

func (e *StorageError) Unwrap() error { return e.Err }
