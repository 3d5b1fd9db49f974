package repo

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Storage is where a repository's objects live: a flat namespace of names
// like "config" or "chunks/ab/ab12..." mapped to byte strings. The
// repository never changes an object after writing it, so a Storage needs
// no update or append.
//
// Implementations wrap their failures in *StorageError and a missing
// object in ErrNotFound, and honour ctx.
type Storage interface {
	// Put stores data under name, replacing any object of that name. It is
	// atomic: readers see the whole new object or none (never a prefix),
	// even when the process dies or the disk fills midway. When Put
	// returns nil the object is durable.
	Put(ctx context.Context, name string, data []byte) error
	// Get returns the whole object.
	Get(ctx context.Context, name string) ([]byte, error)
	// Stat returns the object's size and modification time.
	Stat(ctx context.Context, name string) (ObjectInfo, error)
	// List calls fn for every object whose name starts with prefix, in no
	// particular order, and stops at fn's first error, returning it.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Delete removes the object. Deleting a missing object is not an error.
	Delete(ctx context.Context, name string) error
	// URL returns the location in URL form without credentials, for
	// messages.
	URL() string
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// staleCleaner is an optional ability of a Storage: removing the temporary
// objects of Puts that never finished (a process killed while writing),
// older than the given time. GC calls it.
type staleCleaner interface {
	RemoveStale(ctx context.Context, before time.Time) (int, error)
}

// bufferedGetter is an optional ability of a Storage: Get into a buffer
// the caller reuses, which spares an allocation per chunk.
type bufferedGetter interface {
	GetBuffer(ctx context.Context, name string, buf []byte) ([]byte, error)
}

// OpenStorage opens the storage a repository URL names (see ParseURL). It
// neither creates nor checks a repository there.
func OpenStorage(ctx context.Context, rawURL string) (Storage, error) {
	loc, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch loc.Scheme {
	case "file":
		return newFileStorage(loc), nil
	case "s3":
		return newS3Storage(ctx, loc)
	default:
		return nil, fmt.Errorf("%w: repository URL scheme %q", ErrInvalid, loc.Scheme)
	}
}

// validName reports whether name is usable as an object name: slash-
// separated segments of letters, digits, '.', '-' and '_', none of them
// empty, "." or "..".
func validName(name string) bool {
	if name == "" {
		return false
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, c := range seg {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
				c == '.' || c == '-' || c == '_'
			if !ok {
				return false
			}
		}
	}
	return true
}

func checkName(loc, op, name string) error {
	if !validName(name) {
		return &StorageError{Op: op, URL: loc, Name: name, Err: fmt.Errorf("%w: object name", ErrInvalid)}
	}
	return nil
}
