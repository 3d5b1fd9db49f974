package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/server"
	"strata.dev/strata/internal/store"
)

// putWorkload stores a workload record directly, as admission would have.
func putWorkload(t *testing.T, st *store.Store, name string) {
	t.Helper()
	rec, err := objects.Record(v1alpha1.KindWorkload, v1alpha1.ObjectMeta{Name: name}, v1alpha1.WorkloadSpec{Image: "localhost/x:1"},
		&v1alpha1.WorkloadStatus{Tier: v1alpha1.TierContainer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}

// send sends method path to hs and returns the code and body.
func send(t *testing.T, base, method, path string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestInstanceIsExact: ?instance= names an instance of the workload in the path and no
// other, however the other workload's name begins.
func TestInstanceIsExact(t *testing.T) {
	data := t.TempDir()
	hs, st := newHTTPServer(t, server.Options{DataDir: data})
	putWorkload(t, st, "sec-p")
	putWorkload(t, st, "sec-p-secret")
	logs := filepath.Join(data, "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	for id, text := range map[string]string{"sec-p-0": "public line\n", "sec-p-secret-0": "the secret\n", "sec-p-1": "slot one\n"} {
		if err := os.WriteFile(filepath.Join(logs, id+".log"), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		workload, instance string
		want               int
		body               string
	}{
		{"sec-p", "", http.StatusOK, "public line"},
		{"sec-p", "sec-p-0", http.StatusOK, "public line"},
		{"sec-p", "sec-p-1", http.StatusOK, "slot one"},
		{"sec-p-secret", "sec-p-secret-0", http.StatusOK, "the secret"},
		{"sec-p", "sec-p-secret-0", http.StatusNotFound, "has no instance"},
		{"sec-p", "sec-p-01", http.StatusNotFound, "has no instance"},
		{"sec-p", "sec-p-", http.StatusNotFound, "has no instance"},
		{"sec-p", "sec-p-1.log", http.StatusNotFound, "has no instance"},
		{"sec-p", "sec-p-+1", http.StatusNotFound, "has no instance"},
	} {
		path := server.Prefix + "workloads/" + tc.workload + "/logs?instance=" + tc.instance
		code, body := send(t, hs.URL, http.MethodGet, path, nil)
		if code != tc.want || !strings.Contains(string(body), tc.body) {
			t.Errorf("GET %s: %d %q, want %d with %q", path, code, body, tc.want, tc.body)
		}
		if tc.want != http.StatusOK && strings.Contains(string(body), "secret\n") {
			t.Errorf("GET %s leaked another workload's log: %q", path, body)
		}
		// exec resolves its instance the same way; it fails after that here (no driver),
		// but never with another workload's instance.
		code, body = send(t, hs.URL, http.MethodPost, server.Prefix+"workloads/"+tc.workload+"/exec?instance="+tc.instance,
			strings.NewReader(`{"command": ["true"]}`))
		if (code == http.StatusNotFound) != (tc.want == http.StatusNotFound) {
			t.Errorf("exec %s/%s: %d %s", tc.workload, tc.instance, code, body)
		}
	}
}

// TestMalformedNamesAreBadRequests: a name in a path that no object can have is a 400
// that says what a name looks like, never a 500.
func TestMalformedNamesAreBadRequests(t *testing.T) {
	hs, st := newHTTPServer(t, server.Options{DataDir: t.TempDir(), History: func(string, string) v1alpha1.UsageHistory { return v1alpha1.UsageHistory{} }})
	putWorkload(t, st, "web")
	long := strings.Repeat("a", 300)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "workloads/UPPER..bad"},
		{http.MethodGet, "workloads/" + long},
		{http.MethodGet, "segments/" + long},
		{http.MethodGet, "segments/-dash"},
		{http.MethodGet, "events/" + long},
		{http.MethodGet, "hosts/" + long},
		{http.MethodGet, "snapshots/" + long},
		{http.MethodGet, "events/a%20b"},
		{http.MethodDelete, "workloads/" + long},
		{http.MethodDelete, "workloads/UPPER..bad"},
		{http.MethodDelete, "segments/" + long},
		{http.MethodPut, "workloads/" + long},
		{http.MethodGet, "workloads/UPPER..bad/logs"},
		{http.MethodGet, "workloads/" + long + "/logs"},
		{http.MethodPost, "workloads/" + long + "/exec"},
		{http.MethodGet, "workloads/" + long + "/history"},
	} {
		code, body := send(t, hs.URL, tc.method, server.Prefix+tc.path, strings.NewReader("{}"))
		var s server.Status
		_ = json.Unmarshal(body, &s)
		short := tc.path[:min(len(tc.path), 40)]
		if code != http.StatusBadRequest || s.Reason != server.ReasonBadRequest || !strings.Contains(s.Message, "name") {
			t.Errorf("%s %s: %d %s, want 400 BadRequest about the name", tc.method, short, code, body[:min(len(body), 300)])
		}
		if len(body) > 1000 {
			t.Errorf("%s %s: the answer repeats too much of the name: %d bytes", tc.method, short, len(body))
		}
	}
	// Well-formed names still get their usual answers.
	if code, body := send(t, hs.URL, http.MethodGet, server.Prefix+"workloads/web", nil); code != http.StatusOK {
		t.Errorf("GET workloads/web: %d %s", code, body)
	}
	if code, body := send(t, hs.URL, http.MethodGet, server.Prefix+"workloads/nope", nil); code != http.StatusNotFound {
		t.Errorf("GET workloads/nope: %d %s", code, body)
	}
}
