package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
)

// history writes, in order (revisions 1..6):
//
//	1 create Workload/a   2 create Workload/b   3 create Segment/s
//	4 update Workload/a   5 delete Workload/b   6 status of Segment/s
func writeHistory(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	a := mustCreate(t, s, object("Workload", "a", `{"v":1}`))
	mustCreate(t, s, object("Workload", "b", `{}`))
	seg := mustCreate(t, s, object("Segment", "s", `{}`))
	a.Spec = json.RawMessage(`{"v":2}`)
	if _, err := s.Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "Workload", "b", 0); err != nil {
		t.Fatal(err)
	}
	seg.Status = json.RawMessage(`{"ready":true}`)
	if _, err := s.UpdateStatus(ctx, seg); err != nil {
		t.Fatal(err)
	}
}

func TestWatchReplay(t *testing.T) {
	tests := []struct {
		name string
		kind string
		from uint64
		want []string // "Type Kind/Name@rv"
	}{
		{name: "all of one kind", kind: "Workload", from: 0,
			want: []string{"Added Workload/a@1", "Added Workload/b@2", "Modified Workload/a@4", "Deleted Workload/b@5"}},
		{name: "from the middle", kind: "Workload", from: 2,
			want: []string{"Modified Workload/a@4", "Deleted Workload/b@5"}},
		{name: "another kind", kind: "Segment", from: 0,
			want: []string{"Added Segment/s@3", "Modified Segment/s@6"}},
		{name: "every kind", kind: "", from: 3,
			want: []string{"Modified Workload/a@4", "Deleted Workload/b@5", "Modified Segment/s@6"}},
		{name: "kind with no objects", kind: "Backup", from: 0, want: nil},
		{name: "from the current revision", kind: "", from: 6, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTemp(t, Options{})
			writeHistory(t, s)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w, err := s.Watch(ctx, tt.kind, tt.from)
			if err != nil {
				t.Fatal(err)
			}
			// A live write of the watched kind marks the end of the replay.
			marker := tt.kind
			if marker == "" {
				marker = "Workload"
			}
			mustCreate(t, s, object(marker, "live", `{}`))
			var got []string
			for ev := range w {
				if ev.Object.Name == "live" {
					break
				}
				got = append(got, describe(ev))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func describe(ev Event) string {
	if ev.Type == Error {
		return "Error " + ev.Err.Error()
	}
	return fmt.Sprintf("%s %s@%d", ev.Type, ev.Object.Key(), ev.Object.ResourceVersion)
}

// TestWatchEventObjects checks what events carry: the object as written,
// and for Deleted the last state stamped with the delete's revision.
func TestWatchEventObjects(t *testing.T) {
	s := openTemp(t, Options{})
	writeHistory(t, s)
	w, err := s.Watch(context.Background(), "Workload", 3)
	if err != nil {
		t.Fatal(err)
	}
	mod, del := <-w, <-w
	if string(mod.Object.Spec) != `{"v":2}` || mod.Object.Generation != 2 {
		t.Errorf("Modified carries spec %s generation %d, want {\"v\":2} and 2", mod.Object.Spec, mod.Object.Generation)
	}
	if del.Object.ResourceVersion != 5 || del.Object.UID == "" || string(del.Object.Spec) != `{}` {
		t.Errorf("Deleted carries %+v, want b's last state at revision 5", del.Object)
	}
	// Events are copies: changing one changes nobody else's.
	mod.Object.Spec[1] = 'X'
	w2, err := s.Watch(context.Background(), "Workload", 3)
	if err != nil {
		t.Fatal(err)
	}
	if again := <-w2; string(again.Object.Spec) != `{"v":2}` {
		t.Errorf("a watcher's change leaked into the history: %s", again.Object.Spec)
	}
}

func TestWatchStart(t *testing.T) {
	tests := []struct {
		name    string
		kind    string
		from    uint64
		wantErr error
	}{
		{name: "oldest held", from: 6},
		{name: "evicted", from: 5, wantErr: ErrTooOld},
		{name: "from the beginning", from: 0, wantErr: ErrTooOld},
		{name: "current", from: 10},
		{name: "future", from: 11, wantErr: ErrTooOld},
		{name: "invalid kind", kind: "a/b", from: 10, wantErr: ErrInvalid},
	}
	s := openTemp(t, Options{WatchHistory: 4})
	for i := range 10 {
		mustCreate(t, s, object("Workload", fmt.Sprint("w", i), `{}`))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := s.Watch(ctx, tt.kind, tt.from)
			checkErr(t, err, tt.wantErr)
		})
	}
}

func TestWatchClosesOnCancel(t *testing.T) {
	s := openTemp(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	w, err := s.Watch(ctx, "Workload", 0)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, object("Workload", "a", `{}`))
	if ev := <-w; ev.Type != Added {
		t.Fatalf("event = %s", describe(ev))
	}
	cancel()
	for ev := range w { // closes without an Error event; a late Added may slip in
		if ev.Type == Error {
			t.Errorf("canceled watch sent %s", describe(ev))
		}
	}
	// A canceled context refuses a new watch.
	if _, err := s.Watch(ctx, "Workload", 0); !errors.Is(err, context.Canceled) {
		t.Errorf("watch with a canceled context: %v", err)
	}
}

func TestWatchClosesOnStoreClose(t *testing.T) {
	s := openTemp(t, Options{})
	w, err := s.Watch(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if ev, ok := <-w; ok {
		t.Errorf("watch of a closed store sent %s", describe(ev))
	}
}

// TestSlowWatcher checks that a watcher that reads nothing never holds up
// writers, and that once it falls out of the history it gets the events it
// still could, then an Error wrapping ErrTooOld, then a closed channel.
func TestSlowWatcher(t *testing.T) {
	const history, writes = 8, 300
	s := openTemp(t, Options{WatchHistory: history})
	w, err := s.Watch(context.Background(), "Workload", 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		for i := range writes {
			if _, err := s.Create(context.Background(), object("Workload", fmt.Sprint("w", i), `{}`)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("writers are blocked by a watcher that does not read")
	}
	var last Event
	var rv uint64
	n := 0
	for ev := range w {
		last = ev
		if ev.Type == Error {
			continue
		}
		if ev.Object.ResourceVersion <= rv {
			t.Errorf("event at revision %d after %d", ev.Object.ResourceVersion, rv)
		}
		rv = ev.Object.ResourceVersion
		n++
	}
	if last.Type != Error || !errors.Is(last.Err, ErrTooOld) {
		t.Fatalf("last event = %+v, want an Error wrapping ErrTooOld", last)
	}
	if n >= writes {
		t.Errorf("a watcher that fell behind got all %d events", n)
	}
	t.Logf("slow watcher got %d of %d events, then: %v", n, writes, last.Err)

	// A watcher that keeps up is not affected by the history's size.
	w2, err := s.Watch(context.Background(), "Workload", writes)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range 3 * history {
			if _, err := s.Create(context.Background(), object("Workload", fmt.Sprint("x", i), `{}`)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range 3 * history {
		ev := <-w2
		if ev.Type != Added || ev.Object.ResourceVersion != uint64(writes+i+1) {
			t.Fatalf("event %d = %s", i, describe(ev))
		}
	}
}

// TestListThenWatch checks the List-then-Watch pattern under concurrent
// writes: the events after the list's revision continue it without a gap or
// a repeat.
func TestListThenWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openTemp(t, Options{})
	const writes = 300
	errc := make(chan error, 1)
	go func() {
		for i := range writes {
			if _, err := s.Create(ctx, object("Workload", fmt.Sprint("w", i), `{}`)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for range 20 {
		objs, rev, err := s.List(ctx, "Workload")
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(objs)) != rev {
			t.Fatalf("list at revision %d holds %d objects", rev, len(objs))
		}
		if rev >= writes {
			break
		}
		wctx, wcancel := context.WithCancel(ctx)
		w, err := s.Watch(wctx, "Workload", rev)
		if err != nil {
			t.Fatal(err)
		}
		next := rev + 1
		for ev := range w {
			if ev.Object.ResourceVersion != next {
				t.Fatalf("after a list at %d: event at %d, want %d", rev, ev.Object.ResourceVersion, next)
			}
			if next++; next > rev+10 || next > writes {
				break
			}
		}
		wcancel()
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestWatchHistoryBoundedInBytes writes one large object many times, as an attacker's
// test did with a 7 MB annotation: the history must hold no more than its byte bound, the
// memory must come back after the delete, and a watcher that reads nothing must be told
// to list again.
func TestWatchHistoryBoundedInBytes(t *testing.T) {
	const (
		maxBytes = 2 << 20
		objBytes = 512 << 10
		updates  = 40
	)
	s := openTemp(t, Options{WatchHistoryBytes: maxBytes})
	ctx := context.Background()
	update := func(obj Object, i int) Object {
		t.Helper()
		obj.Spec = json.RawMessage(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("x", objBytes)))
		obj, err := s.Update(ctx, obj)
		if err != nil {
			t.Fatal(err)
		}
		return obj
	}

	var before goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	obj := mustCreate(t, s, object("Workload", "big", `{}`))
	for i := range updates {
		obj = update(obj, i)
	}
	n, b := s.hist.usage()
	if b > maxBytes || n >= updates {
		t.Errorf("the history holds %d events of %d bytes, want at most %d bytes", n, b, maxBytes)
	}
	if err := s.Delete(ctx, "Workload", "big", 0); err != nil {
		t.Fatal(err)
	}
	var after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	// 20 MiB were written; what stays is the history's bound and the store's own.
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 2*maxBytes {
		t.Errorf("the heap grew by %d KiB after %d updates of %d KiB and a delete, want at most %d KiB",
			grown>>10, updates, objBytes>>10, 2*maxBytes>>10)
	}

	// A watcher that reads nothing while the large object is written again and again gets
	// what it still can, then an Error: list again.
	slow, err := s.Watch(ctx, "Workload", s.Revision())
	if err != nil {
		t.Fatal(err)
	}
	obj = mustCreate(t, s, object("Workload", "big", `{}`))
	for i := range updates {
		obj = update(obj, i)
	}
	var last Event
	timeout := time.After(10 * time.Second)
read:
	for {
		select {
		case ev, ok := <-slow:
			if !ok {
				break read
			}
			last = ev
		case <-timeout:
			t.Fatalf("the slow watcher's channel is still open after it read everything; last event %s", describe(last))
		}
	}
	if last.Type != Error || !errors.Is(last.Err, ErrTooOld) {
		t.Fatalf("the slow watcher's last event is %s, want an Error wrapping ErrTooOld", describe(last))
	}
	if !strings.Contains(last.Err.Error(), "list again") {
		t.Errorf("the error does not say what to do: %v", last.Err)
	}
	if _, err := s.Watch(ctx, "Workload", 1); !errors.Is(err, ErrTooOld) {
		t.Errorf("a watch from revision 1 after the bound evicted it: %v, want ErrTooOld", err)
	}
}
