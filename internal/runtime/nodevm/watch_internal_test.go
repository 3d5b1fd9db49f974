package nodevm

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"strata.dev/strata/internal/runtime"
)

// TestOwn: one Driver value at a time watches an instance; another waits
// for the lock, takes it once the first lets go, and gives up when the
// instance has ended meanwhile.
func TestOwn(t *testing.T) {
	dir := t.TempDir()
	newDriver := func() *Driver {
		return &Driver{cfg: Config{StateDir: dir}, log: slog.New(slog.DiscardHandler)}
	}
	a, b := newDriver(), newDriver()
	if err := os.MkdirAll(a.instancesDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	r := &record{ID: "web-0", VM: "nodevm-0", StartedAt: time.Now()}
	if err := a.writeRecord(r); err != nil {
		t.Fatal(err)
	}
	held, err := a.own(t.Context(), r.ID)
	if err != nil || held == nil {
		t.Fatalf("first owner: %v, %v", held, err)
	}
	got := make(chan *os.File, 1)
	go func() {
		f, _ := b.own(t.Context(), r.ID)
		got <- f
	}()
	select {
	case f := <-got:
		t.Fatalf("a second owner got the lock while the first held it: %v", f)
	case <-time.After(1500 * time.Millisecond):
	}
	_ = held.Close()
	select {
	case f := <-got:
		if f == nil {
			t.Fatal("the second owner gave up, want it to take over")
		}
		defer f.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the second owner did not take over within 5 s")
	}

	// An instance that ends while another value watches is nobody's to take.
	ended := &record{ID: "job-0", VM: "nodevm-0", StartedAt: time.Now()}
	if err := a.writeRecord(ended); err != nil {
		t.Fatal(err)
	}
	first, err := a.own(t.Context(), ended.ID)
	if err != nil || first == nil {
		t.Fatalf("first owner: %v, %v", first, err)
	}
	defer first.Close()
	ended.Finished, ended.ExitCode = true, 3
	if err := a.writeRecord(ended); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if f, err := b.own(ctx, ended.ID); f != nil || err != nil || ctx.Err() != nil {
		t.Errorf("owning an ended instance: %v, %v (context %v); want nothing at once", f, err, ctx.Err())
	}
}

// TestWatchEndRecordedByAnother: a value waiting to watch an instance that
// another value sharing the state directory watched to its end still tells
// its own subscribers of that end (both values started or adopted it).
func TestWatchEndRecordedByAnother(t *testing.T) {
	dir := t.TempDir()
	newDriver := func() *Driver {
		log := slog.New(slog.DiscardHandler)
		return &Driver{cfg: Config{StateDir: dir}, log: log, events: runtime.Broadcaster{Name: "nodevm", Log: log}}
	}
	a, b := newDriver(), newDriver()
	if err := os.MkdirAll(a.instancesDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	r := &record{ID: "job-0", VM: "nodevm-0", StartedAt: time.Now()}
	if err := a.writeRecord(r); err != nil {
		t.Fatal(err)
	}
	held, err := a.own(t.Context(), r.ID)
	if err != nil || held == nil {
		t.Fatalf("first owner: %v, %v", held, err)
	}
	events, err := b.events.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		b.watch(t.Context(), r.ID)
	}()
	r.Finished, r.ExitCode, r.FinishedAt = true, 7, time.Now()
	if err := a.writeRecord(r); err != nil {
		t.Fatal(err)
	}
	_ = held.Close()
	select {
	case e := <-events:
		if e.Type != runtime.EventExit || e.ID != r.ID || e.ExitCode != 7 {
			t.Errorf("event %+v, want the exit of %s with code 7", e, r.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit event within 10 s from the value that waited to watch")
	}
	select {
	case <-watched:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not return after the end")
	}
}
