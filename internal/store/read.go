package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Get returns kind/name, or ErrNotFound.
func (s *Store) Get(ctx context.Context, kind, name string) (Object, error) {
	if err := ctx.Err(); err != nil {
		return Object{}, fmt.Errorf("get %s/%s: %w", kind, name, err)
	}
	if err := checkKey("get", kind, name); err != nil {
		return Object{}, err
	}
	var obj Object
	err := s.view(func(tx *bolt.Tx) error {
		var (
			ok  bool
			err error
		)
		obj, ok, err = getObject(tx, kind, name)
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return Object{}, fmt.Errorf("get %s/%s: %w", kind, name, err)
	}
	return obj, nil
}

// List returns every object of kind, sorted by name, and the revision the
// list reflects: watch from it to see every later change.
func (s *Store) List(ctx context.Context, kind string) ([]Object, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", kind, err)
	}
	if err := checkKeyPart(kind); err != nil {
		return nil, 0, fmt.Errorf("list %s: kind %w", kind, err)
	}
	var (
		objs []Object
		rev  uint64
	)
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if rev, err = readRevision(tx); err != nil {
			return err
		}
		b := kindBucket(tx, kind)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			obj, err := decodeRecord(kind, string(k), v)
			if err != nil {
				return err
			}
			objs = append(objs, obj)
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", kind, err)
	}
	return objs, rev, nil
}
