package store

import "errors"

// Sentinel errors. The store wraps them with the operation and the object's
// key (fmt.Errorf with %w); test for them with errors.Is. The API layer maps
// them to HTTP status codes and exit codes.
var (
	// ErrNotFound: no object has that kind and name.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: Create found an object with the same kind and name.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the object was written since the caller read it (its
	// ResourceVersion moved on). Get it again, reapply the change, retry.
	ErrConflict = errors.New("conflict")
	// ErrTooOld: a watch cannot start at, or keep up from, the requested
	// revision because the history no longer holds the events after it. List
	// again and watch from the revision the list returns (HTTP 410 Gone).
	ErrTooOld = errors.New("revision too old")
	// ErrInvalid: the request itself is malformed (empty or unusable kind or
	// name, spec or status that is not JSON, an Update without a
	// ResourceVersion). Retrying the same request cannot succeed.
	ErrInvalid = errors.New("invalid")
	// ErrInUse: another process holds the store's file lock.
	ErrInUse = errors.New("in use by another strata process")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store closed")
)
