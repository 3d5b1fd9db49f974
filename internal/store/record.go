package store

import (
	"encoding/binary"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// The file's layout:
//
//	meta                  bucket
//	  "schema"            layout version, decimal ASCII ("1")
//	  "revision"          the store revision, 8 bytes big-endian
//	objects               bucket
//	  <kind>              one bucket per kind
//	    <name>            the object's record (codec.go)
//
// Names within a kind bucket are in byte order, which is the order List
// returns.
var (
	bucketMeta    = []byte("meta")
	bucketObjects = []byte("objects")
	keySchema     = []byte("schema")
	keyRevision   = []byte("revision")
)

// schemaVersion is the layout this code reads and writes.
const schemaVersion = 1

// kindBucket returns the bucket of kind, or nil if no object of that kind was
// ever created.
func kindBucket(tx *bolt.Tx, kind string) *bolt.Bucket {
	return tx.Bucket(bucketObjects).Bucket([]byte(kind))
}

// getObject reads kind/name; ok is false if it does not exist.
func getObject(tx *bolt.Tx, kind, name string) (obj Object, ok bool, err error) {
	b := kindBucket(tx, kind)
	if b == nil {
		return Object{}, false, nil
	}
	data := b.Get([]byte(name))
	if data == nil {
		return Object{}, false, nil
	}
	obj, err = decodeRecord(kind, name, data)
	return obj, err == nil, err
}

// putObject stores obj, creating its kind's bucket on first use.
func putObject(tx *bolt.Tx, obj Object) error {
	b, err := tx.Bucket(bucketObjects).CreateBucketIfNotExists([]byte(obj.Kind))
	if err != nil {
		return fmt.Errorf("bucket for kind %s: %w", obj.Kind, err)
	}
	return b.Put([]byte(obj.Name), encodeRecord(obj))
}

func readRevision(tx *bolt.Tx) (uint64, error) {
	v := tx.Bucket(bucketMeta).Get(keyRevision)
	switch len(v) {
	case 0:
		return 0, nil
	case 8:
		return binary.BigEndian.Uint64(v), nil
	default:
		return 0, fmt.Errorf("stored revision is %d bytes, want 8", len(v))
	}
}

func putRevision(tx *bolt.Tx, rev uint64) error {
	return tx.Bucket(bucketMeta).Put(keyRevision, binary.BigEndian.AppendUint64(nil, rev))
}

// initLayout creates the buckets of an empty file; it is a no-op on a file
// that has them.
func initLayout(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if meta.Get(keySchema) == nil {
		if err := meta.Put(keySchema, []byte(strconv.Itoa(schemaVersion))); err != nil {
			return err
		}
	}
	_, err = tx.CreateBucketIfNotExists(bucketObjects)
	return err
}

// checkLayout verifies that the file is a strata store this code can read.
func checkLayout(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil || tx.Bucket(bucketObjects) == nil {
		return fmt.Errorf("not a strata store: buckets %q and %q are missing", bucketMeta, bucketObjects)
	}
	v, err := strconv.Atoi(string(meta.Get(keySchema)))
	if err != nil {
		return fmt.Errorf("not a strata store: schema version %q: %w", meta.Get(keySchema), err)
	}
	if v > schemaVersion {
		return fmt.Errorf("the store has layout version %d and this strata reads up to %d; run a newer strata", v, schemaVersion)
	}
	_, err = readRevision(tx)
	return err
}
