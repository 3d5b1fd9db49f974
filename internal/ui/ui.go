// Package ui is strata's dashboard: a page that draws the host's segments, the workloads in
// them and the flows allowed between them, and follows changes live through the API's watch.
//
// The page is static: HTML, one stylesheet and plain ES modules, embedded in the binary. It
// fetches everything it shows from the API (/apis/strata.dev/v1alpha1/...) of the daemon that
// served it and loads nothing from anywhere else: no fonts, scripts or images from other hosts.
// Its Content-Security-Policy tells the browser to refuse any such request.
//
// Terms: the shell is the static page itself. It holds no data, so the daemon serves it
// without a token; every API call the page makes carries the token the user gave in the URL
// fragment (/ui/#token=TOKEN), which the browser never sends to the server.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

// Path is where the dashboard is served.
const Path = "/ui/"

//go:embed assets
var assets embed.FS

// csp allows the page to load its own files and talk to its own origin, nothing else.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the dashboard's files under Path; Path itself is the page.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(Path[:len(Path)-1], http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
