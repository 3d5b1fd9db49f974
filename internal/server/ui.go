package server

import (
	"net/http"
	"path"
	"slices"
	"strings"
)

// UIPath is where the dashboard (Options.UI) is served.
const UIPath = "/ui/"

// publicUI sends GET and HEAD requests for the dashboard's files to open, without a token,
// and every other request to guarded. The files are the same for everyone and hold no
// data; the page sends the token with each API call it makes. Paths are judged cleaned,
// as the mux routes them, so /ui/../apis/... is not mistaken for a dashboard file.
func publicUI(open, guarded http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsUIRequest(r) {
			open.ServeHTTP(w, r)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// IsUIRequest reports whether r asks for one of the dashboard's files: GET or HEAD of a clean
// path under UIPath (or UIPath without its slash), spelled without escapes.
func IsUIRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	if r.URL.RawPath != "" { // escaped slashes and the like: leave them to the token check
		return false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	if clean != p {
		return false
	}
	return p == strings.TrimSuffix(UIPath, "/") || strings.HasPrefix(p, UIPath)
}

// dashboardResources are what the dashboard's page lists and watches (node VMs it lists
// only: they have no watch).
var dashboardResources = []string{"workloads", "segments", "events", "hosts", "nodes"}

// IsDashboardRead reports whether r is one of the API reads the dashboard's page makes:
// GET or HEAD of a clean, unescaped path that lists or watches a resource of
// dashboardResources, or reads a workload's usage history or an instance's log. A proxy
// that serves the page forwards these and nothing else: no writes, exec, downloads.
func IsDashboardRead(r *http.Request) bool {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || r.URL.RawPath != "" || path.Clean(r.URL.Path) != r.URL.Path {
		return false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	switch len(parts) {
	case 1:
		return slices.Contains(dashboardResources, parts[0])
	case 3:
		return parts[0] == "workloads" && parts[1] != "" && (parts[2] == "history" || parts[2] == "logs")
	}
	return false
}
