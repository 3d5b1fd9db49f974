package store

import (
	"context"
	"encoding/json"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCreate(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		obj     Object
		wantErr error
		// want is checked when wantErr is nil: fields the store sets are
		// checked separately.
		wantSpec, wantStatus string
	}{
		{name: "spec is compacted", obj: object("Workload", "web", `{ "image" : "x" }`), wantSpec: `{"image":"x"}`},
		{name: "no spec", obj: object("Workload", "web", "")},
		{name: "null spec is no spec", obj: object("Workload", "web", " null ")},
		{name: "status kept", obj: Object{Kind: "Segment", Name: "s", Status: json.RawMessage(`{"phase":"Ready"}`)},
			wantStatus: `{"phase":"Ready"}`},
		{name: "store-set fields ignored", obj: Object{Kind: "Workload", Name: "web", ResourceVersion: 40, Generation: 7,
			UID: "mine", CreatedAt: time.Unix(1, 0)}},
		{name: "exists", obj: object("Workload", "taken", `{}`), wantErr: ErrAlreadyExists},
		{name: "same name, other kind", obj: object("Segment", "taken", `{}`), wantSpec: `{}`},
		{name: "empty name", obj: object("Workload", "", `{}`), wantErr: ErrInvalid},
		{name: "empty kind", obj: object("", "web", `{}`), wantErr: ErrInvalid},
		{name: "slash in name", obj: object("Workload", "a/b", `{}`), wantErr: ErrInvalid},
		{name: "space in name", obj: object("Workload", "a b", `{}`), wantErr: ErrInvalid},
		{name: "name too long", obj: object("Workload", strings.Repeat("a", 254), `{}`), wantErr: ErrInvalid},
		{name: "spec not JSON", obj: object("Workload", "web", `{image: x}`), wantErr: ErrInvalid},
		{name: "status not JSON", obj: Object{Kind: "Workload", Name: "web", Status: json.RawMessage(`[1,`)}, wantErr: ErrInvalid},
		{name: "canceled", ctx: canceled, obj: object("Workload", "web", `{}`), wantErr: context.Canceled},
	}
	uid := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTemp(t, Options{})
			mustCreate(t, s, object("Workload", "taken", `{}`))
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			got, err := s.Create(ctx, tt.obj)
			checkErr(t, err, tt.wantErr)
			if tt.wantErr != nil {
				if s.Revision() != 1 {
					t.Errorf("a failed create moved the revision to %d", s.Revision())
				}
				return
			}
			if got.Kind != tt.obj.Kind || got.Name != tt.obj.Name {
				t.Errorf("key = %s, want %s", got.Key(), tt.obj.Key())
			}
			if got.ResourceVersion != 2 || s.Revision() != 2 {
				t.Errorf("resourceVersion = %d, revision = %d; want 2 and 2", got.ResourceVersion, s.Revision())
			}
			if got.Generation != 1 {
				t.Errorf("generation = %d, want 1", got.Generation)
			}
			if !uid.MatchString(got.UID) {
				t.Errorf("uid = %q, want 32 hex digits", got.UID)
			}
			if !got.CreatedAt.Equal(testTime) {
				t.Errorf("createdAt = %v, want %v", got.CreatedAt, testTime)
			}
			if string(got.Spec) != tt.wantSpec || string(got.Status) != tt.wantStatus {
				t.Errorf("spec, status = %q, %q; want %q, %q", got.Spec, got.Status, tt.wantSpec, tt.wantStatus)
			}
			if stored := mustGet(t, s, got.Kind, got.Name); !equalObjects(stored, got) {
				t.Errorf("Get returns\n%+v\nCreate returned\n%+v", stored, got)
			}
		})
	}
}

func TestCreateUIDsDiffer(t *testing.T) {
	s := openTemp(t, Options{})
	a := mustCreate(t, s, object("Workload", "a", ""))
	if err := s.Delete(context.Background(), "Workload", "a", 0); err != nil {
		t.Fatal(err)
	}
	b := mustCreate(t, s, object("Workload", "a", ""))
	if a.UID == b.UID {
		t.Errorf("a recreated object kept UID %s", a.UID)
	}
}

func TestGet(t *testing.T) {
	s := openTemp(t, Options{})
	want := mustCreate(t, s, Object{Kind: "Workload", Name: "web", Labels: map[string]string{"tier": "front"},
		Spec: json.RawMessage(`{"image":"x"}`)})
	tests := []struct {
		name, kind, key string
		wantErr         error
	}{
		{name: "found", kind: "Workload", key: "web"},
		{name: "missing name", kind: "Workload", key: "db", wantErr: ErrNotFound},
		{name: "kind never used", kind: "Segment", key: "web", wantErr: ErrNotFound},
		{name: "invalid name", kind: "Workload", key: "", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Get(context.Background(), tt.kind, tt.key)
			checkErr(t, err, tt.wantErr)
			if err == nil && !equalObjects(got, want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.kind+"/"+tt.key) {
				t.Errorf("error %q does not name %s/%s", err, tt.kind, tt.key)
			}
		})
	}
}

// TestUpdate covers the conflict rule, the generation rule and no-op
// updates. Every case starts from Workload/web at revision 1 with spec
// {"image":"a"}, label app=web and status {"ready":true}.
func TestUpdate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(o *Object)
		status  bool // UpdateStatus instead of Update
		wantErr error
		wantRV  uint64 // of the result, and the store's revision after
		wantGen int64
		check   func(t *testing.T, got Object)
	}{
		{name: "spec change bumps generation", change: func(o *Object) { o.Spec = json.RawMessage(`{"image":"b"}`) },
			wantRV: 2, wantGen: 2},
		{name: "labels only", change: func(o *Object) { o.Labels = map[string]string{"app": "web", "x": "y"} },
			wantRV: 2, wantGen: 1},
		{name: "labels removed", change: func(o *Object) { o.Labels = nil }, wantRV: 2, wantGen: 1,
			check: func(t *testing.T, got Object) {
				if got.Labels != nil {
					t.Errorf("labels = %v, want none", got.Labels)
				}
			}},
		{name: "annotations only", change: func(o *Object) { o.Annotations = map[string]string{"note": "n"} },
			wantRV: 2, wantGen: 1},
		{name: "same spec in other white space is a no-op", change: func(o *Object) { o.Spec = json.RawMessage("{ \"image\":\n\"a\" }") },
			wantRV: 1, wantGen: 1},
		{name: "empty labels equal no labels", change: func(o *Object) { o.Labels = map[string]string{"app": "web"}; o.Annotations = map[string]string{} },
			wantRV: 1, wantGen: 1},
		{name: "status ignored by Update", change: func(o *Object) { o.Status = json.RawMessage(`{"ready":false}`) },
			wantRV: 1, wantGen: 1, check: wantStatus(`{"ready":true}`)},
		{name: "spec and status: only spec written", change: func(o *Object) {
			o.Spec = json.RawMessage(`{"image":"b"}`)
			o.Status = json.RawMessage(`{"ready":false}`)
		}, wantRV: 2, wantGen: 2, check: wantStatus(`{"ready":true}`)},
		{name: "resourceVersion not the stored one", change: func(o *Object) { o.ResourceVersion = 5 },
			wantErr: ErrConflict, wantRV: 1},
		{name: "no resourceVersion", change: func(o *Object) { o.ResourceVersion = 0 }, wantErr: ErrInvalid, wantRV: 1},
		{name: "not found", change: func(o *Object) { o.Name = "db" }, wantErr: ErrNotFound, wantRV: 1},
		{name: "spec not JSON", change: func(o *Object) { o.Spec = json.RawMessage(`{`) }, wantErr: ErrInvalid, wantRV: 1},

		{name: "status change keeps generation", status: true, change: func(o *Object) { o.Status = json.RawMessage(`{"ready":false}`) },
			wantRV: 2, wantGen: 1, check: wantStatus(`{"ready":false}`)},
		{name: "status cleared", status: true, change: func(o *Object) { o.Status = nil },
			wantRV: 2, wantGen: 1, check: wantStatus(``)},
		{name: "spec ignored by UpdateStatus", status: true, change: func(o *Object) {
			o.Spec = json.RawMessage(`{"image":"b"}`)
			o.Labels = nil
			o.Status = json.RawMessage(`{"ready":false}`)
		}, wantRV: 2, wantGen: 1, check: func(t *testing.T, got Object) {
			if string(got.Spec) != `{"image":"a"}` || got.Labels["app"] != "web" {
				t.Errorf("UpdateStatus changed spec or labels: %s %v", got.Spec, got.Labels)
			}
		}},
		{name: "same status is a no-op", status: true, change: func(*Object) {}, wantRV: 1, wantGen: 1},
		{name: "stale status update", status: true, change: func(o *Object) {
			o.ResourceVersion = 7
			o.Status = json.RawMessage(`{}`)
		}, wantErr: ErrConflict, wantRV: 1},
		{name: "status of missing object", status: true, change: func(o *Object) { o.Name = "db" }, wantErr: ErrNotFound, wantRV: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTemp(t, Options{})
			orig := mustCreate(t, s, Object{Kind: "Workload", Name: "web", Labels: map[string]string{"app": "web"},
				Spec: json.RawMessage(`{"image":"a"}`), Status: json.RawMessage(`{"ready":true}`)})
			in := orig.clone()
			tt.change(&in)
			update := s.Update
			if tt.status {
				update = s.UpdateStatus
			}
			got, err := update(context.Background(), in)
			checkErr(t, err, tt.wantErr)
			if s.Revision() != tt.wantRV {
				t.Errorf("store revision = %d, want %d", s.Revision(), tt.wantRV)
			}
			stored := mustGet(t, s, "Workload", "web")
			if tt.wantErr != nil {
				if !equalObjects(stored, orig) {
					t.Errorf("a failed update changed the object:\n%+v\nwas\n%+v", stored, orig)
				}
				return
			}
			if !equalObjects(got, stored) {
				t.Errorf("returned\n%+v\nstored\n%+v", got, stored)
			}
			if got.ResourceVersion != tt.wantRV || got.Generation != tt.wantGen {
				t.Errorf("resourceVersion, generation = %d, %d; want %d, %d", got.ResourceVersion, got.Generation, tt.wantRV, tt.wantGen)
			}
			if got.UID != orig.UID || !got.CreatedAt.Equal(orig.CreatedAt) {
				t.Errorf("uid or createdAt changed: %s %v", got.UID, got.CreatedAt)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

func wantStatus(want string) func(t *testing.T, got Object) {
	return func(t *testing.T, got Object) {
		t.Helper()
		if string(got.Status) != want {
			t.Errorf("status = %s, want %s", got.Status, want)
		}
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name       string
		kind, key  string
		expectedRV uint64
		wantErr    error
	}{
		{name: "unconditional", kind: "Workload", key: "web", expectedRV: 0},
		{name: "current resourceVersion", kind: "Workload", key: "web", expectedRV: 2},
		{name: "stale resourceVersion", kind: "Workload", key: "web", expectedRV: 1, wantErr: ErrConflict},
		{name: "not found", kind: "Workload", key: "db", wantErr: ErrNotFound},
		{name: "kind never used", kind: "Backup", key: "web", wantErr: ErrNotFound},
		{name: "invalid key", kind: "Workload", key: "a/b", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTemp(t, Options{})
			o := mustCreate(t, s, object("Workload", "web", `{"v":1}`))
			o.Spec = json.RawMessage(`{"v":2}`)
			if _, err := s.Update(context.Background(), o); err != nil { // now at revision 2
				t.Fatal(err)
			}
			err := s.Delete(context.Background(), tt.kind, tt.key, tt.expectedRV)
			checkErr(t, err, tt.wantErr)
			_, getErr := s.Get(context.Background(), "Workload", "web")
			if tt.wantErr == nil {
				checkErr(t, getErr, ErrNotFound)
				if s.Revision() != 3 {
					t.Errorf("revision = %d after delete, want 3", s.Revision())
				}
			} else {
				checkErr(t, getErr, nil)
				if s.Revision() != 2 {
					t.Errorf("a failed delete moved the revision to %d", s.Revision())
				}
			}
		})
	}
}

func TestList(t *testing.T) {
	s := openTemp(t, Options{})
	for _, n := range []string{"c", "a", "b"} {
		mustCreate(t, s, object("Workload", n, `{}`))
	}
	mustCreate(t, s, object("Segment", "a", `{}`))
	tests := []struct {
		kind      string
		wantNames []string
	}{
		{kind: "Workload", wantNames: []string{"a", "b", "c"}},
		{kind: "Segment", wantNames: []string{"a"}},
		{kind: "Snapshot", wantNames: nil},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			objs, rev, err := s.List(context.Background(), tt.kind)
			if err != nil {
				t.Fatal(err)
			}
			if rev != 4 {
				t.Errorf("revision = %d, want 4", rev)
			}
			var names []string
			for _, o := range objs {
				if o.Kind != tt.kind {
					t.Errorf("List(%s) returned %s", tt.kind, o.Key())
				}
				names = append(names, o.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.wantNames, ",") {
				t.Errorf("names = %v, want %v", names, tt.wantNames)
			}
		})
	}
	if _, _, err := s.List(context.Background(), ""); err == nil {
		t.Error("List of kind \"\" succeeded")
	}
}

// TestResultsAreCopies checks that changing what the store returned does
// not change what it stores.
func TestResultsAreCopies(t *testing.T) {
	s := openTemp(t, Options{})
	labels := map[string]string{"a": "1"}
	got := mustCreate(t, s, Object{Kind: "Workload", Name: "web", Labels: labels, Spec: json.RawMessage(`{"v":1}`)})
	labels["a"] = "changed by caller"
	got.Labels["a"] = "changed by caller"
	got.Spec[1] = 'X'
	stored := mustGet(t, s, "Workload", "web")
	if stored.Labels["a"] != "1" || string(stored.Spec) != `{"v":1}` {
		t.Errorf("stored object changed through the caller's maps or slices: %v %s", stored.Labels, stored.Spec)
	}
}

// equalObjects compares two objects field by field.
func equalObjects(a, b Object) bool {
	return a.Kind == b.Kind && a.Name == b.Name && a.ResourceVersion == b.ResourceVersion &&
		a.Generation == b.Generation && a.UID == b.UID && a.CreatedAt.Equal(b.CreatedAt) &&
		maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations) &&
		string(a.Spec) == string(b.Spec) && string(a.Status) == string(b.Status)
}
