// Package objects converts between strata's API objects (api/v1alpha1) and the store's
// generic records: the user's metadata and spec go to the record's spec, the observed status
// to its status, and the store's revision, generation, UID and creation time come back as
// metadata.
package objects

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/store"
)

// Resource names a kind of object served by the API.
type Resource struct {
	Kind     string // Workload
	Plural   string // workloads
	Singular string // workload
	// Recorded kinds are written by the daemon alone; the API refuses to create or
	// update them.
	Recorded bool
}

// Resources are the kinds the API serves.
var Resources = []Resource{
	{Kind: v1alpha1.KindWorkload, Plural: "workloads", Singular: "workload"},
	{Kind: v1alpha1.KindSegment, Plural: "segments", Singular: "segment"},
	{Kind: KindEvent, Plural: "events", Singular: "event", Recorded: true},
	{Kind: v1alpha1.KindHost, Plural: "hosts", Singular: "host", Recorded: true},
	{Kind: v1alpha1.KindSnapshot, Plural: "snapshots", Singular: "snapshot", Recorded: true},
}

// ResourceFor finds a resource by kind, plural or singular name.
func ResourceFor(name string) (Resource, bool) {
	for _, r := range Resources {
		if name == r.Kind || name == r.Plural || name == r.Singular {
			return r, true
		}
	}
	return Resource{}, false
}

// stored is what a record's spec holds.
type stored struct {
	Spec json.RawMessage `json:"spec"`
}

// meta fills the server-set metadata from a record.
func meta(o store.Object) v1alpha1.ObjectMeta {
	created := o.CreatedAt
	return v1alpha1.ObjectMeta{
		Name: o.Name, Labels: o.Labels, Annotations: o.Annotations,
		ResourceVersion: strconv.FormatUint(o.ResourceVersion, 10), Generation: o.Generation,
		UID: o.UID, CreationTimestamp: &created,
	}
}

// Workload turns a record into a Workload.
func Workload(o store.Object) (*v1alpha1.Workload, error) {
	w := &v1alpha1.Workload{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindWorkload}}
	if err := decode(o, &w.Spec, &w.Status); err != nil {
		return nil, err
	}
	w.Metadata = meta(o)
	return w, nil
}

// Segment turns a record into a Segment.
func Segment(o store.Object) (*v1alpha1.Segment, error) {
	s := &v1alpha1.Segment{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindSegment}}
	if err := decode(o, &s.Spec, &s.Status); err != nil {
		return nil, err
	}
	s.Metadata = meta(o)
	return s, nil
}

// Host turns a record into a Host.
func Host(o store.Object) (*v1alpha1.HostObject, error) {
	h := &v1alpha1.HostObject{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindHost}}
	var spec struct{}
	if err := decode(o, &spec, &h.Status); err != nil {
		return nil, err
	}
	h.Metadata = meta(o)
	return h, nil
}

// Snapshot turns a record into a Snapshot.
func Snapshot(o store.Object) (*v1alpha1.Snapshot, error) {
	s := &v1alpha1.Snapshot{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindSnapshot}}
	if err := decode(o, &s.Spec, &s.Status); err != nil {
		return nil, err
	}
	s.Metadata = meta(o)
	return s, nil
}

// Decode turns a record of any served kind into its API object.
func Decode(o store.Object) (any, error) {
	switch o.Kind {
	case v1alpha1.KindWorkload:
		return Workload(o)
	case v1alpha1.KindSegment:
		return Segment(o)
	case KindEvent:
		return EventFrom(o)
	case v1alpha1.KindHost:
		return Host(o)
	case v1alpha1.KindSnapshot:
		return Snapshot(o)
	}
	return nil, fmt.Errorf("objects: no API type for kind %q", o.Kind)
}

func decode(o store.Object, spec any, status any) error {
	var st stored
	if err := json.Unmarshal(o.Spec, &st); err != nil {
		return fmt.Errorf("decode %s spec: %w", o.Key(), err)
	}
	if len(st.Spec) > 0 {
		if err := json.Unmarshal(st.Spec, spec); err != nil {
			return fmt.Errorf("decode %s spec: %w", o.Key(), err)
		}
	}
	if len(o.Status) > 0 && string(o.Status) != "null" {
		if err := json.Unmarshal(o.Status, status); err != nil {
			return fmt.Errorf("decode %s status: %w", o.Key(), err)
		}
	}
	return nil
}

// Record turns an API object's metadata, spec and status into a record. The server-set
// metadata is carried as the record's ResourceVersion (for a conditional write).
func Record(kind string, m v1alpha1.ObjectMeta, spec, status any) (store.Object, error) {
	sb, err := json.Marshal(spec)
	if err != nil {
		return store.Object{}, fmt.Errorf("encode %s/%s spec: %w", kind, m.Name, err)
	}
	rec := store.Object{Kind: kind, Name: m.Name, Labels: m.Labels, Annotations: m.Annotations}
	rec.Spec, err = json.Marshal(stored{Spec: sb})
	if err != nil {
		return store.Object{}, err
	}
	if status != nil {
		if rec.Status, err = json.Marshal(status); err != nil {
			return store.Object{}, fmt.Errorf("encode %s/%s status: %w", kind, m.Name, err)
		}
	}
	if m.ResourceVersion != "" {
		rv, err := strconv.ParseUint(m.ResourceVersion, 10, 64)
		if err != nil {
			return store.Object{}, fmt.Errorf("metadata.resourceVersion %q is not a number", m.ResourceVersion)
		}
		rec.ResourceVersion = rv
	}
	return rec, nil
}

// KindEvent is the kind of recorded events.
const KindEvent = "Event"

// Event is something that happened to an object, as `strata events` shows it.
type Event struct {
	v1alpha1.TypeMeta `json:",inline"`
	Metadata          v1alpha1.ObjectMeta `json:"metadata"`
	// Type is Normal or Warning.
	Type string `json:"type"`
	// Reason is a short CamelCase word: Started, Exited, Restarted, OOMKilled, Failed, ...
	Reason string `json:"reason"`
	// Object is what it happened to: Workload/NAME, with the instance ID when there is one.
	Object   string `json:"object"`
	Instance string `json:"instance,omitempty"`
	Message  string `json:"message"`
	// Time is when it happened; for a series, the last time.
	Time time.Time `json:"time"`
	// Count and FirstTime make a series: the same event (type, reason, object, instance
	// and message) recorded Count times since FirstTime. Both are empty for a single event.
	Count     int        `json:"count,omitempty"`
	FirstTime *time.Time `json:"firstTime,omitempty"`
}

// EventFrom turns a record into an Event.
func EventFrom(o store.Object) (*Event, error) {
	e := &Event{}
	var st stored
	if err := json.Unmarshal(o.Spec, &st); err != nil {
		return nil, fmt.Errorf("decode %s: %w", o.Key(), err)
	}
	if err := json.Unmarshal(st.Spec, e); err != nil {
		return nil, fmt.Errorf("decode %s: %w", o.Key(), err)
	}
	e.APIVersion, e.Kind = v1alpha1.GroupVersion, KindEvent
	e.Metadata = meta(o)
	return e, nil
}

// MergeWorkloadStatus returns the status cur with the assessment (tier, reasons, node VMs) of
// admitted: the daemon's observations (instances, conditions, phase) and its scaler's
// decision (status.scaling) survive an update of the spec.
func MergeWorkloadStatus(cur, admitted []byte) []byte {
	var c, a v1alpha1.WorkloadStatus
	if json.Unmarshal(cur, &c) != nil {
		return admitted
	}
	if json.Unmarshal(admitted, &a) != nil {
		return cur
	}
	c.Tier, c.Reasons, c.NodeVM = a.Tier, a.Reasons, a.NodeVM // c.Scaling stays: admission decides no replica count
	if c.Phase == "" {
		c.Phase = a.Phase
	}
	b, err := json.Marshal(c)
	if err != nil {
		return cur
	}
	return b
}

// UpdateWorkloadStatus applies change to the stored status of workload name and writes
// it, keeping everything else; when another writer got there first it reads again and
// retries. A workload that is gone is not an error: there is nothing to record on.
func UpdateWorkloadStatus(ctx context.Context, st *store.Store, name string, change func(*v1alpha1.WorkloadStatus)) error {
	return updateStatus(ctx, st, v1alpha1.KindWorkload, name, func(rec store.Object) (v1alpha1.ObjectMeta, any, *v1alpha1.WorkloadStatus, error) {
		w, err := Workload(rec)
		if err != nil {
			return v1alpha1.ObjectMeta{}, nil, nil, err
		}
		return w.Metadata, w.Spec, w.Status, nil
	}, change)
}

// UpdateSegmentStatus is UpdateWorkloadStatus for segment name.
func UpdateSegmentStatus(ctx context.Context, st *store.Store, name string, change func(*v1alpha1.SegmentStatus)) error {
	return updateStatus(ctx, st, v1alpha1.KindSegment, name, func(rec store.Object) (v1alpha1.ObjectMeta, any, *v1alpha1.SegmentStatus, error) {
		sg, err := Segment(rec)
		if err != nil {
			return v1alpha1.ObjectMeta{}, nil, nil, err
		}
		return sg.Metadata, sg.Spec, sg.Status, nil
	}, change)
}

// updateStatus reads object name of kind, applies change to a copy of its status (the
// zero status when it has none) and writes it back when it changed, retrying on conflicts.
func updateStatus[S any](ctx context.Context, st *store.Store, kind, name string,
	decode func(store.Object) (v1alpha1.ObjectMeta, any, *S, error), change func(*S)) error {
	for attempt := 0; attempt < 10; attempt++ {
		rec, err := st.Get(ctx, kind, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		meta, spec, cur, err := decode(rec)
		if err != nil {
			return err
		}
		var status S
		if cur != nil {
			status = *cur
		}
		change(&status)
		next, err := Record(kind, meta, spec, status)
		if err != nil {
			return err
		}
		if string(next.Status) == string(rec.Status) {
			return nil // nothing changed: no write, no event for watchers
		}
		next.ResourceVersion = rec.ResourceVersion
		_, err = st.UpdateStatus(ctx, next)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("write the status of %s %s: %w", strings.ToLower(kind), name, store.ErrConflict)
}
