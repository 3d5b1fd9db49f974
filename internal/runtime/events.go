package runtime

import (
	"context"
	"errors"
	"log/slog"
	"sync"
)

// eventBuffer is how many events a subscriber may fall behind before the
// next ones are dropped for it.
const eventBuffer = 256

// Broadcaster hands a driver's events to every subscriber, as EventSource
// promises: each subscription has a buffered channel of its own, closed when
// its context ends or the Broadcaster is closed; a subscriber that falls
// behind loses events (logged), never blocks the driver. The zero value is
// ready to use.
type Broadcaster struct {
	// Name is the driver's name, for the log.
	Name string
	// Log receives the dropped events; nil: slog's default logger.
	Log *slog.Logger

	mu     sync.Mutex
	subs   map[chan Event]struct{}
	closed bool
}

// Subscribe returns a new subscription (EventSource.Events).
func (b *Broadcaster) Subscribe(ctx context.Context) (<-chan Event, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New(b.Name + " driver: closed")
	}
	if b.subs == nil {
		b.subs = map[chan Event]struct{}{}
	}
	ch := make(chan Event, eventBuffer)
	b.subs[ch] = struct{}{}
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
	})
	return ch, nil
}

// Publish sends e to every subscription.
func (b *Broadcaster) Publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- e:
		default:
			log := b.Log
			if log == nil {
				log = slog.Default()
			}
			log.Warn(b.Name+" driver: event dropped, slow reader", "id", e.ID, "type", e.Type)
		}
	}
}

// Close closes every subscription; later Subscribe calls fail.
func (b *Broadcaster) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		delete(b.subs, ch)
		close(ch)
	}
}
