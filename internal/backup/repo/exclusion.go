package repo

import (
	"context"
	"sync"
)

// exclusion keeps Writers and GC of one repository apart within a process:
// any number of Writers, or one GC. A GC that waits holds new Writers back
// so that a steady stream of backups cannot starve it.
type exclusion struct {
	mu        sync.Mutex
	writers   int
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

func (e *exclusion) lockWriter(ctx context.Context) error {
	for {
		e.mu.Lock()
		if !e.gc && e.gcWaiting == 0 {
			e.writers++
			e.mu.Unlock()
			return nil
		}
		if err := e.wait(ctx); err != nil {
			return err
		}
	}
}

func (e *exclusion) unlockWriter() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.writers--
	e.broadcast()
}

func (e *exclusion) lockGC(ctx context.Context) error {
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
		if !e.gc && e.writers == 0 {
			e.gc = true
			e.mu.Unlock()
			return nil
		}
		if err := e.wait(ctx); err != nil {
			return err
		}
	}
}

func (e *exclusion) unlockGC() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gc = false
	e.broadcast()
}
