package fake

import (
	"context"

	"strata.dev/strata/internal/runtime"
)

// eventBuffer is how many undelivered events a subscriber may have before
// further ones are dropped.
const eventBuffer = 256

type subscriber struct {
	owner string
	ch    chan runtime.Event
}

// Events implements runtime.EventSource.
func (d *Driver) Events(ctx context.Context) (<-chan runtime.Event, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	s := &subscriber{owner: d.name, ch: make(chan runtime.Event, eventBuffer)}
	h := d.host
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-d.closed:
		}
		h.mu.Lock()
		delete(h.subs, s)
		close(s.ch)
		h.mu.Unlock()
	}()
	return s.ch, nil
}

// publish delivers e to the subscribers of driver owner without blocking.
// Callers hold h.mu.
func (h *Host) publish(owner string, e runtime.Event) {
	for s := range h.subs {
		if s.owner != owner {
			continue
		}
		select {
		case s.ch <- e:
		default:
			h.log.Warn("runtime event dropped: subscriber is not reading", "driver", owner, "instance", e.ID, "type", string(e.Type))
		}
	}
}
