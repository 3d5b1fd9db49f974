package cli

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDashboardURL(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	token := strings.Repeat("ab", 32)
	if err := os.WriteFile(filepath.Join(dir, "tls", "tokens"), []byte("# tokens\nadmin "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STRATA_TOKEN", "")
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		stdout   string
		inStderr string
	}{
		{"from the data dir", []string{"dashboard", "--server", "https://127.0.0.1:7443", "--data-dir", dir},
			ExitOK, "https://127.0.0.1:7443/ui/#token=" + token + "\n", "not checked: no CA certificate"},
		{"no server", []string{"dashboard", "--data-dir", dir}, ExitInvalid, "", "--listen 127.0.0.1:8080"},
		{"not https", []string{"dashboard", "--server", "http://127.0.0.1:7443", "--data-dir", dir}, ExitInvalid, "", "give https://HOST:PORT"},
		{"no token file", []string{"dashboard", "--server", "https://127.0.0.1:7443", "--data-dir", t.TempDir()}, ExitFailure, "", "--token-file"},
		{"plain HTTP off the loopback", []string{"dashboard", "--listen", "0.0.0.0:8080"}, ExitInvalid, "", "only a loopback address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, "", tc.args...)
			if code != tc.code || stdout != tc.stdout || !strings.Contains(stderr, tc.inStderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q", code, stdout, stderr, tc.code, tc.stdout, tc.inStderr)
			}
		})
	}
}

// The proxy passes the page to anyone and the API only to the holder of its token,
// without the token (the socket needs none).
func TestDashboardProxy(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "strata.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	daemon := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" auth="+r.Header.Get("Authorization"))
	}))
	daemon.Listener = l
	daemon.Start()
	t.Cleanup(daemon.Close)
	token := strings.Repeat("cd", 32)
	proxy := httptest.NewServer(dashboardProxy(sock, token))
	t.Cleanup(proxy.Close)

	for _, tc := range []struct {
		method     string
		path, auth string
		code       int
		body       string
	}{
		{"", "/ui/", "", http.StatusOK, "GET /ui/ auth="},
		{"", "/ui/app.js", "", http.StatusOK, "GET /ui/app.js auth="},
		{"", "/apis/strata.dev/v1alpha1/workloads", "", http.StatusUnauthorized, `"reason":"Unauthorized"`},
		{"", "/apis/strata.dev/v1alpha1/workloads", "Bearer " + strings.Repeat("0", 64), http.StatusUnauthorized, `"reason":"Unauthorized"`},
		{"", "/apis/strata.dev/v1alpha1/workloads?watch=1", "Bearer " + token, http.StatusOK, "GET /apis/strata.dev/v1alpha1/workloads?watch=1 auth="},
		{"", "/ui/../apis/strata.dev/v1alpha1/workloads", "", http.StatusUnauthorized, `"reason":"Unauthorized"`},
		// The page's reads, and nothing else, even with the token.
		{"", "/apis/strata.dev/v1alpha1/segments", "Bearer " + token, http.StatusOK, "GET /apis/strata.dev/v1alpha1/segments auth="},
		{"", "/apis/strata.dev/v1alpha1/hosts", "Bearer " + token, http.StatusOK, "GET /apis/strata.dev/v1alpha1/hosts"},
		{"", "/apis/strata.dev/v1alpha1/events?watch=1", "Bearer " + token, http.StatusOK, "GET /apis/strata.dev/v1alpha1/events?watch=1"},
		{"", "/apis/strata.dev/v1alpha1/nodes", "Bearer " + token, http.StatusOK, "GET /apis/strata.dev/v1alpha1/nodes"},
		{"", "/apis/strata.dev/v1alpha1/nodes/nodevm-0a1b2c3d4e5f", "Bearer " + token, http.StatusForbidden, `"reason":"Forbidden"`},
		{"", "/apis/strata.dev/v1alpha1/workloads/web/history", "Bearer " + token, http.StatusOK, "GET /apis/strata.dev/v1alpha1/workloads/web/history"},
		{"", "/apis/strata.dev/v1alpha1/workloads/web/logs?instance=web-1", "Bearer " + token, http.StatusOK, "GET /apis/strata.dev/v1alpha1/workloads/web/logs?instance=web-1"},
		{"HEAD", "/apis/strata.dev/v1alpha1/workloads", "Bearer " + token, http.StatusOK, ""},
		{"POST", "/apis/strata.dev/v1alpha1/workloads/web/exec", "Bearer " + token, http.StatusMethodNotAllowed, `"reason":"MethodNotAllowed"`},
		{"POST", "/apis/strata.dev/v1alpha1/workloads", "Bearer " + token, http.StatusMethodNotAllowed, `"reason":"MethodNotAllowed"`},
		{"DELETE", "/apis/strata.dev/v1alpha1/workloads/web", "Bearer " + token, http.StatusMethodNotAllowed, `"reason":"MethodNotAllowed"`},
		{"PUT", "/apis/strata.dev/v1alpha1/segments/default", "Bearer " + token, http.StatusMethodNotAllowed, `"reason":"MethodNotAllowed"`},
		{"POST", "/apis/strata.dev/v1alpha1/images", "Bearer " + token, http.StatusMethodNotAllowed, `"reason":"MethodNotAllowed"`},
		{"", "/apis/strata.dev/v1alpha1/store/backup", "Bearer " + token, http.StatusForbidden, `"reason":"Forbidden"`},
		{"", "/apis/strata.dev/v1alpha1/backuprepos", "Bearer " + token, http.StatusForbidden, `"reason":"Forbidden"`},
		{"", "/apis/strata.dev/v1alpha1/workloads/web", "Bearer " + token, http.StatusForbidden, `"reason":"Forbidden"`},
		{"", "/apis/strata.dev/v1alpha1/workloads/../store/backup", "Bearer " + token, http.StatusForbidden, `"reason":"Forbidden"`},
		{"", "/apis/strata.dev/v1alpha1/workloads/web%2Flogs", "Bearer " + token, http.StatusForbidden, `"reason":"Forbidden"`},
		{"", "/metrics", "Bearer " + token, http.StatusForbidden, `"reason":"Forbidden"`},
		{"", "/ui/../apis/strata.dev/v1alpha1/store/backup", "Bearer " + token, http.StatusForbidden, `"reason":"Forbidden"`},
	} {
		method := tc.method
		if method == "" {
			method = http.MethodGet
		}
		t.Run(method+" "+tc.path+" "+tc.auth, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), method, proxy.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque, _, _ = strings.Cut(tc.path, "?") // as sent, uncleaned
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := proxy.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.body) {
				t.Errorf("%d %q, want %d with %q", resp.StatusCode, body, tc.code, tc.body)
			}
		})
	}
}
