package store

import (
	"context"
	"fmt"
)

const (
	// watchBatch and watchBatchBytes bound how many events a watcher copies
	// out of the history while holding its lock, and so what it keeps alive
	// while it waits for a slow reader.
	watchBatch      = 128
	watchBatchBytes = 1 << 20
	// watchBuffer is each watch channel's buffer.
	watchBuffer = 16
)

// Watch streams the events of kind ("" for every kind) with revisions
// greater than fromRV, in revision order: first those still in the history,
// then new ones as they are written. Pass the revision returned by List (or
// an object's ResourceVersion) to continue from there without a gap.
//
// Watch fails with ErrTooOld if the history no longer reaches back to
// fromRV, or if fromRV is newer than the store: list again and watch from
// the list's revision. The channel closes when ctx ends or the store is
// closed. A watcher that falls behind the history (more than
// Options.WatchHistory writes, or Options.WatchHistoryBytes of events)
// receives a last Event of type Error, whose Err wraps ErrTooOld, before its
// channel closes; writers never wait for it. The watcher then lists again and
// watches from the list's revision.
func (s *Store) Watch(ctx context.Context, kind string, fromRV uint64) (<-chan Event, error) {
	what := "watch of " + kindLabel(kind)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if kind != "" {
		if err := checkKeyPart(kind); err != nil {
			return nil, fmt.Errorf("%s: kind %w", what, err)
		}
	}
	if err := s.checkWatchStart(fromRV); err != nil {
		return nil, fmt.Errorf("%s from revision %d: %w", what, fromRV, err)
	}

	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", what, ErrClosed)
	}
	s.watchers.Add(1)
	s.mu.Unlock()

	out := make(chan Event, watchBuffer)
	go s.serveWatch(ctx, kind, fromRV, out)
	return out, nil
}

// checkWatchStart reports whether a watch can start after rev.
func (s *Store) checkWatchStart(rev uint64) error {
	if oldest := s.hist.oldest(); rev < oldest {
		return fmt.Errorf("%w: the watch history starts after revision %d (it is kept in memory, for %s since the store opened); list again",
			ErrTooOld, oldest, s.hist.bounds())
	}
	if rev <= s.rev.Load() {
		return nil
	}
	// A reader can see a write's revision a moment before the write is
	// published to the history; wait for any write in flight, then look
	// again.
	s.wmu.Lock()
	cur := s.rev.Load()
	s.wmu.Unlock()
	if rev > cur {
		return fmt.Errorf("%w: the store is only at revision %d (was it replaced by an older copy?); list again", ErrTooOld, cur)
	}
	return nil
}

// serveWatch feeds out from the history until ctx ends, the store closes,
// or the watcher falls behind.
func (s *Store) serveWatch(ctx context.Context, kind string, after uint64, out chan<- Event) {
	defer s.watchers.Done()
	defer close(out)
	send := func(ev Event) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		case <-s.done:
			return false
		}
	}
	for {
		evs, upto, wake, err := s.hist.since(after, kind, watchBatch, watchBatchBytes)
		if err != nil {
			s.log.Info("watch fell behind", "kind", kindLabel(kind), "revision", after, "history", s.hist.bounds())
			send(Event{Type: Error, Err: fmt.Errorf("%s fell behind the history (%s): %w; list again",
				"watch of "+kindLabel(kind), s.hist.bounds(), err)})
			return
		}
		for _, ev := range evs {
			if !send(Event{Type: ev.Type, Object: ev.Object.clone()}) {
				return
			}
		}
		if upto > after {
			after = upto
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
}

func kindLabel(kind string) string {
	if kind == "" {
		return "every kind"
	}
	return kind
}
