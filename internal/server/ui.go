package server

import (
	"net/http"
	"path"
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
