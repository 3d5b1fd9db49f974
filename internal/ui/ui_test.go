package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandlerServesThePage(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/ui/", "text/html", `<script type="module" src="app.js">`},
		{"/ui/app.js", "text/javascript", "follow('workloads'"},
		{"/ui/topology.js", "text/javascript", "export function render"},
		{"/ui/style.css", "text/css", ".wcard"},
		{"/ui/api.js", "text/javascript", "export function parseSSE"},
		{"/ui/hosts.js", "text/javascript", "export function renderHosts"},
		{"/ui/charts.js", "text/javascript", "export function lineChart"},
		{"/ui/plan.js", "text/javascript", "export function renderPlan"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if w.Code != http.StatusOK {
				t.Fatalf("code %d: %s", w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
				t.Errorf("Content-Type %q, want %s", ct, tc.contentType)
			}
			if !strings.Contains(w.Body.String(), tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
		})
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ui/nothing.js", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("a missing file: %d, want 404", w.Code)
	}
}

// The page loads nothing from other hosts: no URL in its files but the SVG namespace.
func TestAssetsNameNoOtherHost(t *testing.T) {
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(\s*['"]?[^#'"\s]`)
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(assets, path)
		if err != nil {
			return err
		}
		for _, m := range url.FindAllString(string(data), -1) {
			if m != "http://www.w3.org" {
				t.Errorf("%s names %q: the dashboard must not load anything from elsewhere", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
