package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// A record is an object as stored under its name; kind and name are the
// bucket and the key, so they are not repeated. The layout is binary so that
// reading an object costs no parsing of its spec and status, which stay
// JSON text inside it:
//
//	byte     recordFormat
//	uvarint  resourceVersion
//	varint   generation
//	bytes    uid
//	varint   createdAt, seconds since the Unix epoch
//	uvarint  createdAt's nanoseconds within that second
//	uvarint  number of labels, then bytes key, bytes value for each, sorted by key
//	uvarint  number of annotations, the same way
//	bytes    spec
//	bytes    status
//
// where bytes is a uvarint length followed by that many bytes.
const recordFormat = 1

func encodeRecord(o Object) []byte {
	n := 1 + 3*binary.MaxVarintLen64 + len(o.UID) + len(o.Spec) + len(o.Status) + 6*binary.MaxVarintLen64
	for k, v := range o.Labels {
		n += len(k) + len(v) + 2*binary.MaxVarintLen64
	}
	for k, v := range o.Annotations {
		n += len(k) + len(v) + 2*binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	b = append(b, recordFormat)
	b = binary.AppendUvarint(b, o.ResourceVersion)
	b = binary.AppendVarint(b, o.Generation)
	b = appendBytes(b, o.UID)
	b = binary.AppendVarint(b, o.CreatedAt.Unix())
	b = binary.AppendUvarint(b, uint64(o.CreatedAt.Nanosecond()))
	b = appendMap(b, o.Labels)
	b = appendMap(b, o.Annotations)
	b = appendBytes(b, string(o.Spec))
	b = appendBytes(b, string(o.Status))
	return b
}

func appendBytes(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendMap(b []byte, m map[string]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = appendBytes(b, k)
		b = appendBytes(b, m[k])
	}
	return b
}

// decodeRecord copies what it needs out of data, which bbolt owns only for
// the life of the transaction.
func decodeRecord(kind, name string, data []byte) (Object, error) {
	o := Object{Kind: kind, Name: name}
	d := decoder{b: data}
	if f := d.u8(); f != recordFormat && d.err == nil {
		d.err = fmt.Errorf("record format %d is not known to this strata", f)
	}
	o.ResourceVersion = d.uvarint()
	o.Generation = d.varint()
	o.UID = string(d.bytes())
	sec, nsec := d.varint(), d.uvarint()
	if nsec >= 1e9 {
		d.fail(fmt.Errorf("createdAt has %d nanoseconds", nsec))
	}
	o.CreatedAt = time.Unix(sec, int64(nsec)).UTC()
	o.Labels = d.stringMap()
	o.Annotations = d.stringMap()
	o.Spec = d.rawJSON()
	o.Status = d.rawJSON()
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes after the end", len(d.b))
	}
	if d.err != nil {
		return Object{}, fmt.Errorf("stored record of %s/%s is damaged: %w", kind, name, d.err)
	}
	return o, nil
}

var errShort = errors.New("record ends early")

// decoder reads a record; after the first error every read returns zero
// values and err keeps that error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) u8() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail(errShort)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns the next length-prefixed field, still in bbolt's memory.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// rawJSON returns a copy of the next field, nil if it is empty.
func (d *decoder) rawJSON() []byte {
	v := d.bytes()
	if len(v) == 0 {
		return nil
	}
	return slices.Clone(v)
}

func (d *decoder) stringMap() map[string]string {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(d.b)) { // every entry takes at least two bytes
		d.fail(errShort)
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := string(d.bytes())
		m[k] = string(d.bytes())
	}
	if d.err != nil {
		return nil
	}
	return m
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}
