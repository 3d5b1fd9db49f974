package store

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

type counterSpec struct {
	N int `json:"n"`
}

// TestConcurrentUpdates has many goroutines increment one counter with
// get, change, update and retry on conflict. Optimistic concurrency must
// lose no increment: the final count equals the number of successful
// updates, the generation counted each of them, and a watcher saw every
// value once, in order.
func TestConcurrentUpdates(t *testing.T) {
	const workers, perWorker = 8, 25
	ctx := context.Background()
	s := openTemp(t, Options{WatchHistory: workers * perWorker * 2})
	mustCreate(t, s, object("Counter", "c", `{"n":0}`))
	w, err := s.Watch(ctx, "Counter", 1)
	if err != nil {
		t.Fatal(err)
	}

	var ok, conflicts atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				for {
					cur, err := s.Get(ctx, "Counter", "c")
					if err != nil {
						t.Error(err)
						return
					}
					var spec counterSpec
					if err := json.Unmarshal(cur.Spec, &spec); err != nil {
						t.Error(err)
						return
					}
					spec.N++
					cur.Spec, _ = json.Marshal(spec)
					_, err = s.Update(ctx, cur)
					if errors.Is(err, ErrConflict) {
						conflicts.Add(1)
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					ok.Add(1)
					break
				}
			}
		})
	}
	wg.Wait()

	final := mustGet(t, s, "Counter", "c")
	var spec counterSpec
	if err := json.Unmarshal(final.Spec, &spec); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d updates, %d conflicts retried", ok.Load(), conflicts.Load())
	if int64(spec.N) != ok.Load() || ok.Load() != workers*perWorker {
		t.Errorf("counter = %d after %d successful updates (want %d)", spec.N, ok.Load(), workers*perWorker)
	}
	if final.Generation != 1+ok.Load() {
		t.Errorf("generation = %d, want %d", final.Generation, 1+ok.Load())
	}
	if final.ResourceVersion != s.Revision() || s.Revision() != uint64(1+ok.Load()) {
		t.Errorf("resourceVersion %d, revision %d; want both %d", final.ResourceVersion, s.Revision(), 1+ok.Load())
	}
	for want := 1; want <= spec.N; want++ {
		ev := <-w
		var seen counterSpec
		if err := json.Unmarshal(ev.Object.Spec, &seen); err != nil || ev.Type != Modified || seen.N != want {
			t.Fatalf("event %d: %s with n=%d (%v), want Modified with n=%d", want, describe(ev), seen.N, err, want)
		}
	}
}

// TestConcurrentMixed runs creates, reads, lists, status writes and deletes
// of different objects at once, for the race detector.
func TestConcurrentMixed(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{})
	w, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range w {
		}
	}()
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			name := string(rune('a' + i))
			for range 20 {
				o, err := s.Create(ctx, object("Workload", name, `{}`))
				if err != nil {
					t.Error(err)
					return
				}
				o.Status = json.RawMessage(`{"phase":"Running"}`)
				if o, err = s.UpdateStatus(ctx, o); err != nil {
					t.Error(err)
					return
				}
				if _, _, err := s.List(ctx, "Workload"); err != nil {
					t.Error(err)
				}
				if err := s.Delete(ctx, "Workload", name, o.ResourceVersion); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if s.Revision() != 6*20*3 {
		t.Errorf("revision = %d, want %d", s.Revision(), 6*20*3)
	}
}
