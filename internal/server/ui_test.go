package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"strata.dev/strata/internal/store"
)

// On the TLS listener the dashboard's files need no token; nothing else gets past
// without one, however its path is spelled.
func TestPublicUI(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "strata.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tokens, err := OpenTokens(filepath.Join(dir, TokensFile), TokensOptions{})
	if err != nil {
		t.Fatal(err)
	}
	admin := firstToken(t, filepath.Join(dir, TokensFile))
	ui := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "the page") })
	srv := New(Options{Store: st, UI: ui})
	tlsHandler := publicUI(srv.h, RequireToken(srv.h, tokens, nil))

	for _, tc := range []struct {
		method, target, token string
		want                  int
		page                  bool // the UI handler answered
	}{
		{"GET", "/ui/", "", http.StatusOK, true},
		{"GET", "/ui/app.js", "", http.StatusOK, true},
		{"HEAD", "/ui/style.css", "", http.StatusOK, true},
		{"GET", "/ui", "", http.StatusTemporaryRedirect, false}, // the mux adds the slash
		{"GET", "/ui/", admin, http.StatusOK, true},
		{"POST", "/ui/", "", http.StatusUnauthorized, false},
		{"GET", "/ui/../apis/strata.dev/v1alpha1/workloads", "", http.StatusUnauthorized, false},
		{"GET", "/ui/%2e%2e/apis/strata.dev/v1alpha1/workloads", "", http.StatusUnauthorized, false},
		{"GET", "/ui%2Fapis/strata.dev/v1alpha1/workloads", "", http.StatusUnauthorized, false},
		{"GET", "/ui//x", "", http.StatusUnauthorized, false},
		{"GET", "/uix", "", http.StatusUnauthorized, false},
		{"GET", Prefix + "workloads", "", http.StatusUnauthorized, false},
		{"GET", Prefix + "workloads", admin, http.StatusOK, false},
		{"GET", "/healthz", "", http.StatusUnauthorized, false},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			w := httptest.NewRecorder()
			tlsHandler.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("code %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if page := w.Body.String() == "the page"; page != tc.page && tc.method != "HEAD" {
				t.Errorf("served the page: %v, want %v (body %q)", page, tc.page, w.Body)
			}
		})
	}

	// On the unix socket, where no token is asked, the same route serves the page.
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/ui/", nil))
	if w.Code != http.StatusOK || w.Body.String() != "the page" {
		t.Errorf("unix socket: %d %q", w.Code, w.Body)
	}
	// Without Options.UI there is no dashboard.
	w = httptest.NewRecorder()
	New(Options{Store: st}).Handler().ServeHTTP(w, httptest.NewRequest("GET", "/ui/", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("without UI: %d, want 404", w.Code)
	}
}
