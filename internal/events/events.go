// Package events records what happens to objects (an instance started, exited, was
// OOM-killed or restarted; a policy was violated) as Event objects in the store, where
// `strata events` lists and watches them. Repeats of an event within ten minutes of the
// last one fold into one stored event with a count (a series), so that a start failing
// every few seconds is one event, not hundreds. Retention is bounded: past Max events the
// oldest are deleted.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
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
	window time.Duration

	seriesM sync.Mutex
	series  map[string]*series // by the event's type, reason, object, instance and message
}

// DefaultSeriesWindow is how long after its last repeat an event still folds into its
// series.
const DefaultSeriesWindow = 10 * time.Minute

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
	return &Recorder{store: st, clock: clock, log: log, max: max, window: DefaultSeriesWindow, series: map[string]*series{}}
}

// Record stores e, stamping its time. An event the same as the last one of its series
// (type, reason, object, instance and message) within the series window is folded into
// it: the stored event's count goes up and its time becomes now, as `FailedStart x37
// over 12m`. Recording never fails the caller: a store error is logged.
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
	key := strings.Join([]string{e.Type, e.Reason, e.Object, e.Instance, e.Message}, "\x00")
	r.seriesM.Lock()
	defer r.seriesM.Unlock()
	if s := r.series[key]; s != nil && e.Time.Sub(s.last) < r.window {
		if r.fold(ctx, s, e) {
			r.log.Debug("event repeated", "type", e.Type, "reason", e.Reason, "object", e.Object, "instance", e.Instance, "count", s.count)
			return
		}
	}
	name := fmt.Sprintf("%016x-%06d", now.UnixNano(), r.seq.Add(1)%1000000)
	rec, err := objects.Record(objects.KindEvent, v1alpha1.ObjectMeta{Name: name}, body(e), nil)
	if err == nil {
		_, err = r.store.Create(ctx, rec)
	}
	if err != nil {
		r.log.Error("event not recorded", "reason", e.Reason, "object", e.Object, "err", err)
		return
	}
	r.remember(key, &series{name: name, count: 1, first: e.Time, last: e.Time})
	r.log.Info("event", "type", e.Type, "reason", e.Reason, "object", e.Object, "instance", e.Instance, "message", e.Message)
	if r.writes.Add(1)%50 == 0 {
		r.Prune(ctx)
	}
}

// series is the stored event that repeats of an event fold into.
type series struct {
	name        string
	count       int
	first, last time.Time
}

// fold adds e to series s by updating its stored event; false when that event is gone
// (pruned) or cannot be written, and e must be recorded anew.
func (r *Recorder) fold(ctx context.Context, s *series, e objects.Event) bool {
	cur, err := r.store.Get(ctx, objects.KindEvent, s.name)
	if err != nil {
		return false
	}
	first := s.first
	e.Count, e.FirstTime = s.count+1, &first
	rec, err := objects.Record(objects.KindEvent, v1alpha1.ObjectMeta{Name: s.name, ResourceVersion: strconv.FormatUint(cur.ResourceVersion, 10)}, body(e), nil)
	if err == nil {
		_, err = r.store.Update(ctx, rec)
	}
	if err != nil {
		r.log.Warn("event series not updated", "reason", e.Reason, "object", e.Object, "err", err)
		return false
	}
	s.count, s.last = e.Count, e.Time
	return true
}

// remember makes s the series of key, first forgetting series that ended (nothing
// repeated them within the window) once there are more than the events kept.
func (r *Recorder) remember(key string, s *series) {
	if len(r.series) >= r.max {
		for k, old := range r.series {
			if s.last.Sub(old.last) >= r.window {
				delete(r.series, k)
			}
		}
		if len(r.series) >= r.max {
			clear(r.series) // all active: start over; repeats then open new series
		}
	}
	r.series[key] = s
}

// body is the stored form of e.
func body(e objects.Event) json.RawMessage {
	b, _ := json.Marshal(struct {
		Type      string     `json:"type"`
		Reason    string     `json:"reason"`
		Object    string     `json:"object"`
		Instance  string     `json:"instance,omitempty"`
		Message   string     `json:"message"`
		Time      time.Time  `json:"time"`
		Count     int        `json:"count,omitempty"`
		FirstTime *time.Time `json:"firstTime,omitempty"`
	}{e.Type, e.Reason, e.Object, e.Instance, e.Message, e.Time, e.Count, e.FirstTime})
	return b
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
