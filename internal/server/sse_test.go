package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/server"
	"strata.dev/strata/internal/store"
)

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	name, id string
	data     json.RawMessage
}

// readSSE parses frames from r until n events have come, the stream ends or the
// deadline passes; comment lines are counted in comments.
func readSSE(t *testing.T, r io.Reader, n int) (events []sseEvent, comments int) {
	t.Helper()
	sc := bufio.NewScanner(r)
	var cur sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name != "" {
				events = append(events, cur)
				cur = sseEvent{}
				if len(events) == n {
					return events, comments
				}
			}
		case strings.HasPrefix(line, ":"):
			comments++
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			cur.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = json.RawMessage(strings.TrimPrefix(line, "data: "))
		default:
			t.Errorf("unexpected line in the event stream: %q", line)
		}
	}
	return events, comments
}

func newHTTPServer(t *testing.T, o server.Options) (*httptest.Server, *store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "strata.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o.Store = st
	hs := httptest.NewServer(server.New(o).Handler())
	t.Cleanup(func() { hs.Close(); _ = st.Close() })
	return hs, st
}

func TestWatchAsServerSentEvents(t *testing.T) {
	hs, st := newHTTPServer(t, server.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, from, err := st.List(ctx, v1alpha1.KindWorkload)
	if err != nil {
		t.Fatal(err)
	}
	post := func(doc string) {
		t.Helper()
		res, err := http.Post(hs.URL+server.Prefix+"workloads", "application/yaml", strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
			t.Fatalf("create answered %s", res.Status)
		}
	}
	post(web)
	post(strings.ReplaceAll(web, "name: web", "name: api"))

	watch := func(rv, lastID string) io.ReadCloser {
		t.Helper()
		u := hs.URL + server.Prefix + "workloads?watch=1"
		if rv != "" {
			u += "&resourceVersion=" + rv
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/event-stream")
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
			_ = res.Body.Close()
			t.Fatalf("Content-Type %q, want text/event-stream", ct)
		}
		return res.Body
	}
	body := watch(itoa(from), "")
	defer body.Close()
	evs, _ := readSSE(t, body, 2)
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2", len(evs))
	}
	var names []string
	for _, ev := range evs {
		var w v1alpha1.Workload
		if err := json.Unmarshal(ev.data, &w); err != nil {
			t.Fatalf("event data is not a workload: %v: %s", err, ev.data)
		}
		if ev.name != "ADDED" || ev.id != w.Metadata.ResourceVersion {
			t.Errorf("event %q id %q for %s at resourceVersion %s, want ADDED with the object's resourceVersion as id", ev.name, ev.id, w.Metadata.Name, w.Metadata.ResourceVersion)
		}
		names = append(names, w.Metadata.Name)
	}
	if strings.Join(names, ",") != "web,api" {
		t.Errorf("events for %v, want web then api", names)
	}

	// A client that reconnects with the last id it saw gets only what came after.
	body2 := watch("", evs[0].id)
	defer body2.Close()
	resumed, _ := readSSE(t, body2, 1)
	if len(resumed) != 1 || resumed[0].id != evs[1].id {
		t.Errorf("resuming after id %s gave %+v, want the event with id %s", evs[0].id, resumed, evs[1].id)
	}
}

func TestWatchWithoutEventStreamStaysJSONLines(t *testing.T) {
	hs, _ := newHTTPServer(t, server.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+server.Prefix+"workloads?watch=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
}

func TestReadyz(t *testing.T) {
	checks := []server.Check{{Name: "store", OK: true, Message: "readable"}, {Name: "containerd", OK: true, Message: "containerd 1.7 at /run/c.sock"}}
	hs, _ := newHTTPServer(t, server.Options{Ready: func(context.Context) []server.Check { return checks }})
	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = res.Body.Close() }()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz: %d %q, want 200 ok", code, body)
	}
	if code, body := get("/readyz?verbose"); code != http.StatusOK || !strings.Contains(body, "[+] containerd: containerd 1.7 at /run/c.sock\n") {
		t.Errorf("/readyz?verbose: %d %q, want 200 with each check", code, body)
	}
	checks = append(checks, server.Check{Name: "qemu", Message: "qemu-system-x86_64 not found"})
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "[-] qemu: qemu-system-x86_64 not found\n") || !strings.Contains(body, "[+] store") {
		t.Errorf("/readyz with a failing check: %d %q, want 503 listing every check", code, body)
	}
}

func TestRecordedKindsAreReadOnly(t *testing.T) {
	hs, st := newHTTPServer(t, server.Options{})
	ctx := context.Background()
	rec, err := objects.Record(v1alpha1.KindHost, v1alpha1.ObjectMeta{Name: "h1"}, struct{}{}, v1alpha1.HostStatus{Ready: true, Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(hs.URL + server.Prefix + "hosts/h1")
	if err != nil {
		t.Fatal(err)
	}
	var h v1alpha1.HostObject
	err = json.NewDecoder(res.Body).Decode(&h)
	_ = res.Body.Close()
	if err != nil || h.Kind != "Host" || h.Status == nil || !h.Status.Ready || h.Status.Arch != "amd64" {
		t.Errorf("GET hosts/h1 gave %+v (err %v), want the stored Host", h, err)
	}
	for _, res := range []string{"hosts", "events"} {
		doc := `{"apiVersion": "strata.dev/v1alpha1", "kind": "Host", "metadata": {"name": "h2"}}`
		r, err := http.Post(hs.URL+server.Prefix+res, "application/json", strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if r.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(b), "recorded by the daemon") {
			t.Errorf("POST %s answered %s %s, want 405 saying the daemon records them", res, r.Status, b)
		}
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

type memRecorder struct {
	mu     sync.Mutex
	events []objects.Event
}

func (m *memRecorder) Record(_ context.Context, e objects.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
}

// TestForcedViolationIsRecorded: a workload forced past the assessment policy leaves a
// PolicyViolation event naming what it violates; a refused one leaves none.
func TestForcedViolationIsRecorded(t *testing.T) {
	rec := &memRecorder{}
	hs, _ := newHTTPServer(t, server.Options{Recorder: rec})
	doc := "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: x}\nspec: {isolation: container, image: i, traits: {trust: untrusted}}\n"
	for _, force := range []string{"", "?force=true"} {
		res, err := http.Post(hs.URL+server.Prefix+"workloads"+force, "application/yaml", strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if n := len(rec.events); (force == "" && n != 0) || (force != "" && n != 1) {
			t.Fatalf("after POST%s (%s): %d events %+v", force, res.Status, n, rec.events)
		}
	}
	e := rec.events[0]
	if e.Type != "Warning" || e.Reason != "PolicyViolation" || e.Object != "Workload/x" || !strings.Contains(e.Message, "weaker than sandbox") {
		t.Errorf("event %+v, want a Warning PolicyViolation on Workload/x naming the violation", e)
	}
}
