package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Object is one stored object of any kind. Kind, Name, Labels, Annotations,
// Spec and Status are the caller's; ResourceVersion, Generation, UID and
// CreatedAt are set by the store and ignored on input except where a method
// says otherwise (ResourceVersion on Update, UpdateStatus).
type Object struct {
	Kind string // "Workload", "Segment", ...
	Name string

	// ResourceVersion is the revision of the last write to this object.
	ResourceVersion uint64
	// Generation counts spec changes; 1 after Create.
	Generation int64
	// UID is set on Create: 128 random bits in hex. A deleted and recreated
	// object has a new UID.
	UID string
	// CreatedAt is set on Create from Options.Clock, in UTC.
	CreatedAt time.Time

	Labels      map[string]string
	Annotations map[string]string

	// Spec is the desired state, as JSON.
	Spec json.RawMessage
	// Status is the observed state, as JSON, written by controllers.
	Status json.RawMessage
}

// Key returns "Kind/Name", the form the store uses in error messages.
func (o Object) Key() string { return o.Kind + "/" + o.Name }

// clone returns a deep copy, so that callers can never change what the store
// or another watcher holds.
func (o Object) clone() Object {
	o.Labels = maps.Clone(o.Labels)
	o.Annotations = maps.Clone(o.Annotations)
	o.Spec = slices.Clip(bytes.Clone(o.Spec))
	o.Status = slices.Clip(bytes.Clone(o.Status))
	return o
}

// EventType says what a write did.
type EventType string

// Event types.
const (
	Added    EventType = "Added"
	Modified EventType = "Modified"
	Deleted  EventType = "Deleted"
	// Error is the last event of a watch that fell behind; Event.Err wraps
	// ErrTooOld.
	Error EventType = "Error"
)

// Event is one write seen by a watcher: the object as the write left it, with
// the write's revision as ResourceVersion. For Deleted it is the object as it
// was before, stamped with the revision of the delete. An Error event carries
// only Err.
type Event struct {
	Type   EventType
	Object Object
	Err    error
}

// maxKeyLen bounds kinds and names (a DNS subdomain's length).
const maxKeyLen = 253

// checkKey reports whether kind and name can form a key.
func checkKey(op, kind, name string) error {
	for _, part := range []struct{ what, s string }{{"kind", kind}, {"name", name}} {
		if err := checkKeyPart(part.s); err != nil {
			return fmt.Errorf("%s %s/%s: %s %w", op, kind, name, part.what, err)
		}
	}
	return nil
}

func checkKeyPart(s string) error {
	if s == "" {
		return fmt.Errorf("%w: it is empty", ErrInvalid)
	}
	if len(s) > maxKeyLen {
		return fmt.Errorf("%w: it is %d bytes long, at most %d are allowed", ErrInvalid, len(s), maxKeyLen)
	}
	for i := range len(s) {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return fmt.Errorf("%w: byte %d is %q; use printable ASCII without spaces or '/'", ErrInvalid, i, c)
		}
	}
	return nil
}

// compactJSON validates raw and returns it without insignificant white space;
// empty and "null" both become nil.
func compactJSON(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %w", ErrInvalid, err)
	}
	if b.String() == "null" {
		return nil, nil
	}
	return b.Bytes(), nil
}

// normalize returns obj with empty maps as nil and spec and status compacted;
// what goes into the store and what is compared.
func normalize(op string, obj Object) (Object, error) {
	if err := checkKey(op, obj.Kind, obj.Name); err != nil {
		return Object{}, err
	}
	var err error
	if obj.Spec, err = compactJSON(obj.Spec); err != nil {
		return Object{}, fmt.Errorf("%s %s: spec %w", op, obj.Key(), err)
	}
	if obj.Status, err = compactJSON(obj.Status); err != nil {
		return Object{}, fmt.Errorf("%s %s: status %w", op, obj.Key(), err)
	}
	obj.Labels = nilIfEmpty(obj.Labels)
	obj.Annotations = nilIfEmpty(obj.Annotations)
	return obj, nil
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
