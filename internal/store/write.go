package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Create stores a new object and returns it as stored. The store sets
// ResourceVersion, Generation (1), UID and CreatedAt; the values in obj are
// ignored. Status is stored as given. ErrAlreadyExists if the key is taken.
func (s *Store) Create(ctx context.Context, obj Object) (Object, error) {
	if err := ctx.Err(); err != nil {
		return Object{}, fmt.Errorf("create %s: %w", obj.Key(), err)
	}
	obj, err := normalize("create", obj)
	if err != nil {
		return Object{}, err
	}
	obj.UID = newUID()
	obj.CreatedAt = s.clock().UTC()
	obj.Generation = 1
	ev, err := s.commit(func(tx *bolt.Tx, rev uint64) (Event, error) {
		if b := kindBucket(tx, obj.Kind); b != nil && b.Get([]byte(obj.Name)) != nil {
			return Event{}, ErrAlreadyExists
		}
		obj.ResourceVersion = rev
		return Event{Type: Added, Object: obj}, putObject(tx, obj)
	})
	if err != nil {
		return Object{}, fmt.Errorf("create %s: %w", obj.Key(), err)
	}
	return ev.Object.clone(), nil
}

// Update writes obj's Spec, Labels and Annotations over the stored object's,
// provided obj.ResourceVersion is the stored one (else ErrConflict; 0 is
// ErrInvalid). Generation goes up by one iff the spec changed. Status in
// obj is ignored: it is written with UpdateStatus. If nothing changes, the
// stored object is returned and no revision is used.
func (s *Store) Update(ctx context.Context, obj Object) (Object, error) {
	return s.update(ctx, "update", obj, func(cur *Object, in Object) bool {
		changed := false
		if !bytes.Equal(cur.Spec, in.Spec) {
			cur.Spec = in.Spec
			cur.Generation++
			changed = true
		}
		if !maps.Equal(cur.Labels, in.Labels) {
			cur.Labels = in.Labels
			changed = true
		}
		if !maps.Equal(cur.Annotations, in.Annotations) {
			cur.Annotations = in.Annotations
			changed = true
		}
		return changed
	})
}

// UpdateStatus writes obj's Status over the stored object's, under the same
// ResourceVersion rule as Update. Everything else in obj is ignored, and
// Generation does not change.
func (s *Store) UpdateStatus(ctx context.Context, obj Object) (Object, error) {
	return s.update(ctx, "update status of", obj, func(cur *Object, in Object) bool {
		if bytes.Equal(cur.Status, in.Status) {
			return false
		}
		cur.Status = in.Status
		return true
	})
}

// update is Update and UpdateStatus: apply changes cur from in and reports
// whether anything changed.
func (s *Store) update(ctx context.Context, op string, in Object, apply func(cur *Object, in Object) bool) (Object, error) {
	if err := ctx.Err(); err != nil {
		return Object{}, fmt.Errorf("%s %s: %w", op, in.Key(), err)
	}
	in, err := normalize(op, in)
	if err != nil {
		return Object{}, err
	}
	if in.ResourceVersion == 0 {
		return Object{}, fmt.Errorf("%s %s: %w: resourceVersion is 0; send the resourceVersion of the object you read",
			op, in.Key(), ErrInvalid)
	}
	ev, err := s.commit(func(tx *bolt.Tx, rev uint64) (Event, error) {
		cur, ok, err := getObject(tx, in.Kind, in.Name)
		if err != nil {
			return Event{}, err
		}
		if !ok {
			return Event{}, ErrNotFound
		}
		if cur.ResourceVersion != in.ResourceVersion {
			return Event{}, staleError(in.ResourceVersion, cur.ResourceVersion)
		}
		if !apply(&cur, in) {
			return Event{Object: cur}, errUnchanged
		}
		cur.ResourceVersion = rev
		return Event{Type: Modified, Object: cur}, putObject(tx, cur)
	})
	if errors.Is(err, errUnchanged) {
		return ev.Object, nil // decoded in this call: the caller's own copy
	}
	if err != nil {
		return Object{}, fmt.Errorf("%s %s: %w", op, in.Key(), err)
	}
	return ev.Object.clone(), nil
}

// Delete removes kind/name. expectedRV is the ResourceVersion the caller
// read (ErrConflict if the object has moved on since), or 0 to delete
// whatever is stored. ErrNotFound if there is no such object.
func (s *Store) Delete(ctx context.Context, kind, name string, expectedRV uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s/%s: %w", kind, name, err)
	}
	if err := checkKey("delete", kind, name); err != nil {
		return err
	}
	_, err := s.commit(func(tx *bolt.Tx, rev uint64) (Event, error) {
		cur, ok, err := getObject(tx, kind, name)
		if err != nil {
			return Event{}, err
		}
		if !ok {
			return Event{}, ErrNotFound
		}
		if expectedRV != 0 && cur.ResourceVersion != expectedRV {
			return Event{}, staleError(expectedRV, cur.ResourceVersion)
		}
		if err := kindBucket(tx, kind).Delete([]byte(name)); err != nil {
			return Event{}, err
		}
		cur.ResourceVersion = rev
		return Event{Type: Deleted, Object: cur}, nil
	})
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", kind, name, err)
	}
	return nil
}

func staleError(read, stored uint64) error {
	return fmt.Errorf("%w: resourceVersion %d was read but the object is now at %d; get it again and retry",
		ErrConflict, read, stored)
}

// errUnchanged rolls back the transaction of a write that would change
// nothing.
var errUnchanged = errors.New("unchanged")

// commit runs change in one read-write transaction, under the write lock
// that keeps events in revision order, and publishes the event change
// returns. change gets the revision this write will have if it commits; it
// returns errUnchanged (with the stored object in the event) for a no-op.
// When commit returns nil the write is on disk.
func (s *Store) commit(change func(tx *bolt.Tx, rev uint64) (Event, error)) (Event, error) {
	if s.closed.Load() {
		return Event{}, ErrClosed
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var (
		ev  Event
		rev uint64
	)
	err := s.db.Update(func(tx *bolt.Tx) error {
		last, err := readRevision(tx)
		if err != nil {
			return err
		}
		rev = last + 1
		if ev, err = change(tx, rev); err != nil {
			return err
		}
		return putRevision(tx, rev)
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return Event{}, ErrClosed
	}
	if err != nil {
		return ev, err
	}
	s.rev.Store(rev)
	s.hist.add(ev)
	return ev, nil
}

// newUID returns 128 random bits in hex.
func newUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand aborts the process instead)
	return hex.EncodeToString(b[:])
}
