package control

import (
	"sync"
	"time"
)

// queue holds names to reconcile, each at most once, with the time it is due.
type queue struct {
	mu   sync.Mutex
	due  map[string]time.Time
	wake chan struct{}
}

func newQueue() *queue {
	return &queue{due: map[string]time.Time{}, wake: make(chan struct{}, 1)}
}

// add schedules name at t, or earlier if it is already scheduled earlier.
func (q *queue) add(name string, t time.Time) {
	q.mu.Lock()
	if cur, ok := q.due[name]; !ok || t.Before(cur) {
		q.due[name] = t
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next returns a name that is due at now, or the time until the next one (0: empty).
func (q *queue) next(now time.Time) (string, time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var (
		best  string
		bestT time.Time
	)
	for name, t := range q.due {
		if best == "" || t.Before(bestT) || (t.Equal(bestT) && name < best) {
			best, bestT = name, t
		}
	}
	if best == "" {
		return "", 0
	}
	if bestT.After(now) {
		return "", bestT.Sub(now)
	}
	delete(q.due, best)
	return best, 0
}

// len returns how many names are scheduled, due or not.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.due)
}
