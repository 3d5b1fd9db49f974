package store

import (
	"fmt"
	"sync"
)

// history is the ring of the most recent events, shared by all watchers.
// Every write adds exactly one event, so the ring holds a contiguous run of
// revisions: floor+1 .. floor+n.
type history struct {
	mu     sync.Mutex
	size   int     // the most events held
	events []Event // ring; grows to size, then wraps
	start  int     // index of the oldest event
	n      int     // events held
	// floor is the newest revision whose event is not held: the revision
	// at open, or the last one evicted. Watchers can start at floor or later.
	floor uint64
	// wake is closed, and replaced, whenever an event is added.
	wake chan struct{}
}

func newHistory(size int, rev uint64) *history {
	return &history{size: size, floor: rev, wake: make(chan struct{})}
}

// add appends ev, whose revision must be the one after the last held, and
// evicts the oldest event if the ring is full. It never blocks on watchers.
func (h *history) add(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if want := h.floor + uint64(h.n) + 1; ev.Object.ResourceVersion != want {
		panic(fmt.Sprintf("store: event of revision %d added to a history that expects %d", ev.Object.ResourceVersion, want))
	}
	switch {
	case len(h.events) < h.size: // still growing: start is 0
		h.events = append(h.events, ev)
	default:
		if h.n == h.size {
			h.start = (h.start + 1) % h.size
			h.n--
			h.floor++
		}
		h.events[(h.start+h.n)%h.size] = ev
	}
	h.n++
	close(h.wake)
	h.wake = make(chan struct{})
}

// oldest returns the oldest revision a watch can start from.
func (h *history) oldest() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.floor
}

// errBehind reports that the events after a revision have left the ring.
type errBehind struct{ after, floor uint64 }

func (e *errBehind) Error() string {
	return fmt.Sprintf("the events after revision %d have left the history, which now starts after %d", e.after, e.floor)
}

func (e *errBehind) Unwrap() error { return ErrTooOld }

// since returns up to max events of kind ("" for all) with revisions after
// after, and the last revision it looked at (after itself if there was
// nothing newer). wake is closed at the next add, so a caller that is
// caught up can wait on it without missing anything. A revision beyond
// the newest held is treated as caught up: its event is on its way.
func (h *history) since(after uint64, kind string, max int) (evs []Event, upto uint64, wake <-chan struct{}, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if after < h.floor {
		return nil, after, nil, &errBehind{after: after, floor: h.floor}
	}
	upto = after
	last := h.floor + uint64(h.n)
	for rev := after + 1; rev <= last && len(evs) < max; rev++ {
		ev := h.events[(h.start+int(rev-h.floor-1))%len(h.events)]
		if kind == "" || ev.Object.Kind == kind {
			evs = append(evs, ev)
		}
		upto = rev
	}
	return evs, upto, h.wake, nil
}
