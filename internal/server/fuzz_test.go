package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/store"
)

// FuzzAdmission sends arbitrary bodies to the routes that decode objects (create and
// update of workloads and segments: strict decoding, defaults, validation, assessment)
// and to the JSON request bodies of exec, snapshots and backups. Bad input is never a
// panic nor a 500; every error is a Status with a message; an object that is accepted
// reads back as what was answered.
func FuzzAdmission(f *testing.F) {
	f.Add(uint8(0), []byte("apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: web}\nspec: {image: localhost/web:1, replicas: 2}\n"))
	f.Add(uint8(1), []byte(`{"apiVersion": "strata.dev/v1alpha1", "kind": "Segment", "metadata": {"name": "a"}, "spec": {"subnet": "10.213.9.0/24"}}`))
	f.Add(uint8(2), []byte("apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: web}\nspec: {image: x, ports: [{port: 80, publish: 8080}], traits: {os: windows}}\n"))
	f.Add(uint8(3), []byte("apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: a}\nspec: {allow: [{from: {segment: b}, ports: [{port: 1}]}]}\n"))
	f.Add(uint8(4), []byte(`{"command": ["sh", "-c", "true"]}`))
	f.Add(uint8(5), []byte(`{"name": "s1", "memory": true}`))
	f.Add(uint8(6), []byte(`{"workloads": ["web"], "repo": "r"}`))
	f.Add(uint8(7), []byte(`{"url": "file:///tmp/r", "name": "r"}`))
	f.Add(uint8(8), []byte(`{"keepLast": 1}`))
	// One store for all inputs: what one input created, the next may update or clash with.
	st, err := store.Open(filepath.Join(f.TempDir(), "strata.db"), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	s := New(Options{Store: st})
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		switch route % 9 {
		case 0:
			writeAndRead(t, s, http.MethodPost, Prefix+"workloads", body)
		case 1:
			writeAndRead(t, s, http.MethodPost, Prefix+"segments", body)
		case 2:
			writeAndRead(t, s, http.MethodPut, Prefix+"workloads/web", body)
		case 3:
			writeAndRead(t, s, http.MethodPut, Prefix+"segments/a", body)
		case 4:
			if w := answer(t, s, http.MethodPost, Prefix+"workloads", []byte("apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: web}\nspec: {image: x}\n")); w.Code != http.StatusCreated && w.Code != http.StatusConflict {
				t.Fatalf("seed workload: %d %s", w.Code, w.Body)
			}
			answer(t, s, http.MethodPost, Prefix+"workloads/web/exec", body)
		case 5:
			var req SnapshotRequest
			decoded(t, &req, body)
		case 6:
			var req v1alpha1.BackupRequest
			decoded(t, &req, body)
		case 7:
			var req v1alpha1.BackupRepositoryRequest
			decoded(t, &req, body)
		case 8:
			var req v1alpha1.BackupPruneRequest
			decoded(t, &req, body)
		}
	})
}

// answer serves one request and checks that it is never a 500 and that every error is a
// Status with a message.
func answer(t *testing.T, s *Server, method, path string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequestWithContext(context.Background(), method, path, bytes.NewReader(body))
	s.Handler().ServeHTTP(w, r)
	if w.Code >= 500 {
		t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
	}
	if w.Code >= 400 {
		var st Status
		if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || st.Kind != "Status" || st.Code != w.Code || (st.Message == "" && len(st.Details) == 0) {
			t.Fatalf("%s %s: %d answer is not a Status with a message: %s", method, path, w.Code, w.Body)
		}
	}
	return w
}

// writeAndRead writes an object through the API; when it is accepted, a GET returns it.
func writeAndRead(t *testing.T, s *Server, method, path string, body []byte) {
	t.Helper()
	if method == http.MethodPut { // an update needs something to update
		seed := "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: web}\nspec: {image: x}\n"
		if strings.Contains(path, "segments") {
			seed = "apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: a}\n"
		}
		if w := answer(t, s, http.MethodPost, Prefix+strings.Split(strings.TrimPrefix(path, Prefix), "/")[0], []byte(seed)); w.Code != http.StatusCreated && w.Code != http.StatusConflict {
			t.Fatalf("seed object: %d %s", w.Code, w.Body)
		}
	}
	w := answer(t, s, method, path, body)
	if w.Code != http.StatusCreated && w.Code != http.StatusOK {
		return
	}
	var obj struct {
		Metadata v1alpha1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &obj); err != nil || obj.Metadata.Name == "" {
		t.Fatalf("accepted, but the answer is no object: %v: %s", err, w.Body)
	}
	plural := strings.Split(strings.TrimPrefix(path, Prefix), "/")[0]
	got := answer(t, s, http.MethodGet, Prefix+plural+"/"+obj.Metadata.Name, nil)
	if got.Code != http.StatusOK || !bytes.Equal(got.Body.Bytes(), w.Body.Bytes()) {
		t.Fatalf("accepted %s, but reads back as %d %s", w.Body, got.Code, got.Body)
	}
}

// decoded checks the JSON request decoder of the backup and snapshot routes: an error is
// always a bad request.
func decoded(t *testing.T, v any, body []byte) {
	t.Helper()
	r := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/", bytes.NewReader(body))
	if err := decodeInto(r, v); err != nil && !errors.Is(err, errBadRequest) {
		t.Fatalf("decode error is not a bad request: %v", err)
	}
}
