// Package events records what happens to objects (an instance started, exited, was
// OOM-killed or restarted; a policy was violated) as Event objects in the store, where
// `strata events` lists and watches them. Retention is bounded: past Max events the oldest
// are deleted.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/store"
)

// DefaultMax is how many events are kept by default.
const DefaultMax = 1000

// Event types.
const (
	Normal  = "Normal"
	Warning = "Warning"
)

// Recorder writes events to the store.
type Recorder struct {
	store  *store.Store
	clock  func() time.Time
	log    *slog.Logger
	max    int
	seq    atomic.Uint64
	pruneM sync.Mutex
	writes atomic.Uint64
}

// New returns a Recorder keeping at most max events (DefaultMax when max <= 0).
func New(st *store.Store, clock func() time.Time, max int, log *slog.Logger) *Recorder {
	if max <= 0 {
		max = DefaultMax
	}
	if clock == nil {
		clock = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{store: st, clock: clock, log: log, max: max}
}

// Record stores e, stamping its time. Recording never fails the caller: a store error is logged.
func (r *Recorder) Record(ctx context.Context, e objects.Event) {
	if r == nil {
		return
	}
	now := r.clock().UTC()
	if e.Time.IsZero() {
		e.Time = now
	}
	if e.Type == "" {
		e.Type = Normal
	}
	name := fmt.Sprintf("%016x-%06d", now.UnixNano(), r.seq.Add(1)%1000000)
	body, err := json.Marshal(struct {
		Type     string    `json:"type"`
		Reason   string    `json:"reason"`
		Object   string    `json:"object"`
		Instance string    `json:"instance,omitempty"`
		Message  string    `json:"message"`
		Time     time.Time `json:"time"`
	}{e.Type, e.Reason, e.Object, e.Instance, e.Message, e.Time})
	if err != nil {
		r.log.Error("event not recorded", "reason", e.Reason, "err", err)
		return
	}
	rec, err := objects.Record(objects.KindEvent, v1alpha1.ObjectMeta{Name: name}, json.RawMessage(body), nil)
	if err == nil {
		_, err = r.store.Create(ctx, rec)
	}
	if err != nil {
		r.log.Error("event not recorded", "reason", e.Reason, "object", e.Object, "err", err)
		return
	}
	r.log.Info("event", "type", e.Type, "reason", e.Reason, "object", e.Object, "instance", e.Instance, "message", e.Message)
	if r.writes.Add(1)%50 == 0 {
		r.Prune(ctx)
	}
}

// Prune deletes the oldest events beyond the retention limit.
func (r *Recorder) Prune(ctx context.Context) {
	r.pruneM.Lock()
	defer r.pruneM.Unlock()
	recs, _, err := r.store.List(ctx, objects.KindEvent)
	if err != nil {
		r.log.Error("events not pruned", "err", err)
		return
	}
	// Names sort by time: the oldest come first.
	for i := 0; i < len(recs)-r.max; i++ {
		if err := r.store.Delete(ctx, objects.KindEvent, recs[i].Name, 0); err != nil {
			r.log.Error("event not pruned", "name", recs[i].Name, "err", err)
		}
	}
}
