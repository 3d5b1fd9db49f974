package runtime_test

import (
	"context"
	"testing"
	"time"

	"strata.dev/strata/internal/runtime"
)

// TestBroadcaster: every subscription gets each event; one whose context ends is
// closed and gets no more; a full one loses events without blocking; Close closes
// the rest and refuses new subscriptions.
func TestBroadcaster(t *testing.T) {
	var b runtime.Broadcaster
	b.Name = "test"
	ctx, cancel := context.WithCancel(context.Background())
	early, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	late, err := b.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b.Publish(runtime.Event{ID: "a", Type: runtime.EventExit})
	for _, ch := range []<-chan runtime.Event{early, late} {
		if e := <-ch; e.ID != "a" {
			t.Fatalf("got %+v, want the event of a", e)
		}
	}
	cancel()
	deadline := time.After(5 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-early:
		case <-deadline:
			t.Fatal("a subscription whose context ended is still open")
		}
	}
	done := make(chan struct{})
	go func() {
		for i := range 300 { // beyond the buffer: the rest are dropped, Publish returns
			b.Publish(runtime.Event{ID: "b", ExitCode: i})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	b.Close()
	n := 0
	for range late {
		n++
	}
	if n != 256 {
		t.Errorf("a full subscription kept %d events, want its buffer of 256", n)
	}
	if _, err := b.Subscribe(context.Background()); err == nil {
		t.Error("Subscribe after Close succeeded")
	}
}

// TestStatusOf: an instance removed while the list is made is left out; another
// failure ends the list.
func TestStatusOf(t *testing.T) {
	status := func(_ context.Context, id string) (runtime.Status, error) {
		switch id {
		case "gone":
			return runtime.Status{}, runtime.ErrNotFound
		case "broken":
			return runtime.Status{}, context.DeadlineExceeded
		}
		return runtime.Status{ID: id}, nil
	}
	list, err := runtime.StatusOf(context.Background(), []string{"a", "gone", "b"}, status)
	if err != nil || len(list) != 2 || list[0].ID != "a" || list[1].ID != "b" {
		t.Fatalf("StatusOf = %+v, %v; want a and b", list, err)
	}
	if _, err := runtime.StatusOf(context.Background(), []string{"a", "broken"}, status); err == nil {
		t.Fatal("a failing status did not end the list")
	}
}
