package repo

import (
	"context"
	"sync"
)

// exclusion keeps the operations of one repository apart within a
// process: any number of shared ones (Writers, readers), or one exclusive
// one (GC, Prune, Delete). An exclusive operation that waits holds new
// Writers back so that a steady stream of backups cannot starve it;
// readers do not wait for it, so that a reader opened while another is
// still open never waits for a GC that waits for the first.
//
// Between processes the lock objects do this job (see lock.go); within a
// process the exclusion makes an exclusive operation wait instead of
// failing on the process's own locks.
type exclusion struct {
	mu        sync.Mutex
	shared    int
	gc        bool
	gcWaiting int
	changed   chan struct{} // closed and replaced on every release
}

var (
	exclusionsMu sync.Mutex
	exclusions   = map[string]*exclusion{}
)

// exclusionFor returns the exclusion of the repository with this ID,
// shared by every Repo of the process that opened it.
func exclusionFor(id string) *exclusion {
	exclusionsMu.Lock()
	defer exclusionsMu.Unlock()
	e, ok := exclusions[id]
	if !ok {
		e = &exclusion{changed: make(chan struct{})}
		exclusions[id] = e
	}
	return e
}

// wait blocks until the state changes or ctx ends. It is called with e.mu
// held and returns with it released.
func (e *exclusion) wait(ctx context.Context) error {
	ch := e.changed
	e.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *exclusion) broadcast() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// lockWriter takes the shared side for a Writer: it waits while an
// exclusive operation runs or waits.
func (e *exclusion) lockWriter(ctx context.Context) error { return e.lockShared(ctx, true) }

// lockReader takes the shared side for a reader: it waits only while an
// exclusive operation runs.
func (e *exclusion) lockReader(ctx context.Context) error { return e.lockShared(ctx, false) }

func (e *exclusion) lockShared(ctx context.Context, yield bool) error {
	for {
		e.mu.Lock()
		if !e.gc && (!yield || e.gcWaiting == 0) {
			e.shared++
			e.mu.Unlock()
			return nil
		}
		if err := e.wait(ctx); err != nil {
			return err
		}
	}
}

func (e *exclusion) unlockShared() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shared--
	e.broadcast()
}

func (e *exclusion) lockExclusive(ctx context.Context) error {
	e.mu.Lock()
	e.gcWaiting++
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.gcWaiting--
		e.broadcast()
		e.mu.Unlock()
	}()
	for {
		e.mu.Lock()
		if !e.gc && e.shared == 0 {
			e.gc = true
			e.mu.Unlock()
			return nil
		}
		if err := e.wait(ctx); err != nil {
			return err
		}
	}
}

func (e *exclusion) unlockExclusive() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gc = false
	e.broadcast()
}
