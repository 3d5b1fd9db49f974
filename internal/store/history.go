package store

import (
	"fmt"
	"sync"
)

// history is the queue of the most recent events, shared by all watchers. It is bounded
// twice: by a number of events and by their bytes, so that a few large objects written
// many times cannot fill the daemon's memory. Every write adds exactly one event, so the
// queue holds a contiguous run of revisions: floor+1 .. floor+n.
type history struct {
	mu       sync.Mutex
	size     int     // the most events held
	maxBytes int64   // the most bytes held (at least the newest event is always held)
	events   []Event // events[head:] are held, oldest first
	head     int
	bytes    int64 // the sizes of the held events, summed
	// floor is the newest revision whose event is not held: the revision
	// at open, or the last one evicted. Watchers can start at floor or later.
	floor uint64
	// wake is closed, and replaced, whenever an event is added.
	wake chan struct{}
}

func newHistory(size int, maxBytes int64, rev uint64) *history {
	return &history{size: size, maxBytes: maxBytes, floor: rev, wake: make(chan struct{})}
}

// eventSize estimates the memory an event holds: its variable parts plus a fixed overhead
// for the rest.
func eventSize(ev Event) int64 {
	n := 256 + len(ev.Object.Kind) + len(ev.Object.Name) + len(ev.Object.UID) + len(ev.Object.Spec) + len(ev.Object.Status)
	for k, v := range ev.Object.Labels {
		n += len(k) + len(v) + 32
	}
	for k, v := range ev.Object.Annotations {
		n += len(k) + len(v) + 32
	}
	return int64(n)
}

// add appends ev, whose revision must be the one after the last held, and
// evicts the oldest events while either bound is exceeded. It never blocks on
// watchers.
func (h *history) add(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if want := h.floor + uint64(h.len()) + 1; ev.Object.ResourceVersion != want {
		panic(fmt.Sprintf("store: event of revision %d added to a history that expects %d", ev.Object.ResourceVersion, want))
	}
	h.events = append(h.events, ev)
	h.bytes += eventSize(ev)
	for h.len() > h.size || (h.bytes > h.maxBytes && h.len() > 1) {
		h.bytes -= eventSize(h.events[h.head])
		h.events[h.head] = Event{} // let the evicted object go
		h.head++
		h.floor++
	}
	if h.head > 0 && h.head >= len(h.events)/2 {
		// Move the held events down, so the array does not grow without end.
		n := copy(h.events, h.events[h.head:])
		clear(h.events[n:])
		h.events = h.events[:n]
		h.head = 0
	}
	close(h.wake)
	h.wake = make(chan struct{})
}

// len returns how many events are held. The caller holds mu.
func (h *history) len() int { return len(h.events) - h.head }

// oldest returns the oldest revision a watch can start from.
func (h *history) oldest() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.floor
}

// usage returns how many events, and how many bytes of them, are held.
func (h *history) usage() (events int, bytes int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.len(), h.bytes
}

// bounds describes the history's limits for error messages.
func (h *history) bounds() string {
	return fmt.Sprintf("the last %d writes or %d MiB, whichever is less", h.size, h.maxBytes>>20)
}

// errBehind reports that the events after a revision have left the history.
type errBehind struct{ after, floor uint64 }

func (e *errBehind) Error() string {
	return fmt.Sprintf("the events after revision %d have left the history, which now starts after %d", e.after, e.floor)
}

func (e *errBehind) Unwrap() error { return ErrTooOld }

// since returns up to max events of kind ("" for all) with revisions after
// after, and no more than maxBytes of them unless the first alone is larger
// (a watcher blocked on a slow reader holds its batch: it must stay small),
// and the last revision it looked at (after itself if there was
// nothing newer). wake is closed at the next add, so a caller that is
// caught up can wait on it without missing anything. A revision beyond
// the newest held is treated as caught up: its event is on its way.
func (h *history) since(after uint64, kind string, max int, maxBytes int64) (evs []Event, upto uint64, wake <-chan struct{}, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if after < h.floor {
		return nil, after, nil, &errBehind{after: after, floor: h.floor}
	}
	upto = after
	last := h.floor + uint64(h.len())
	var size int64
	for rev := after + 1; rev <= last && len(evs) < max; rev++ {
		ev := h.events[h.head+int(rev-h.floor-1)]
		if kind == "" || ev.Object.Kind == kind {
			n := eventSize(ev)
			if len(evs) > 0 && size+n > maxBytes {
				break
			}
			evs = append(evs, ev)
			size += n
		}
		upto = rev
	}
	return evs, upto, h.wake, nil
}
