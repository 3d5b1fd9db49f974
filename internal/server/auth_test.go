package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"strata.dev/strata/internal/store"
)

// manualClock moves only when told to.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// tlsServer is a Server behind ServeTLS on 127.0.0.1 with freshly made material.
type tlsServer struct {
	url    string
	dir    string // the TLS directory
	mat    *TLSMaterial
	tokens *Tokens
	clock  *manualClock
	admin  string // the admin token
	http   *http.Client
	logs   *bytes.Buffer
	sock   string // the unix socket the same server answers on
	st     *store.Store
}

func startTLS(t *testing.T) *tlsServer {
	t.Helper()
	return startTLSWith(t, Limits{})
}

// startTLSWith starts a Server with lim on a TLS listener on 127.0.0.1 and on a unix socket.
func startTLSWith(t *testing.T, lim Limits) *tlsServer {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "strata.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := &tlsServer{dir: filepath.Join(dir, "tls"), clock: &manualClock{now: time.Now()}, logs: &bytes.Buffer{}, st: st}
	ts.mat, err = EnsureTLS(TLSOptions{Dir: ts.dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(&syncWriter{w: ts.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts.tokens, err = OpenTokens(filepath.Join(ts.dir, TokensFile), TokensOptions{Logger: log, Now: ts.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ts.admin = firstToken(t, filepath.Join(ts.dir, TokensFile))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.url = "https://" + l.Addr().String()
	ts.sock = filepath.Join(dir, "s.sock")
	ul, err := ListenUnix(ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	srv := New(Options{Store: st, Logger: log, Limits: lim})
	go func() { done <- srv.ServeTLS(ctx, l, ts.mat.ServerConfig(), ts.tokens) }()
	go func() { done <- srv.Serve(ctx, ul) }()
	pool := x509.NewCertPool()
	pool.AddCert(ts.mat.CA)
	tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool}}
	ts.http = &http.Client{Transport: tr}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
		_ = st.Close()
	})
	return ts
}

// syncWriter lets the request goroutines and the test share a log buffer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func firstToken(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "admin" {
			return f[1]
		}
	}
	t.Fatalf("no admin token in %s:\n%s", path, data)
	return ""
}

// get sends GET path with the Authorization header auth ("" = none) and returns the
// status code, the WWW-Authenticate header and the body.
func (ts *tlsServer) get(t *testing.T, path, auth string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, ts.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := ts.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body
}

func TestRequireTokenOverTLS(t *testing.T) {
	ts := startTLS(t)
	wrong := strings.Repeat("0", 64)
	for _, path := range []string{Prefix + "workloads", "/healthz", "/readyz", Prefix + "workloads/nope"} {
		for _, tc := range []struct {
			name      string
			auth      string
			wantCode  int
			challenge string
		}{
			{"no token", "", http.StatusUnauthorized, `Bearer realm="strata"`},
			{"basic credentials", "Basic YWRtaW46YWRtaW4=", http.StatusUnauthorized, `Bearer realm="strata"`},
			{"empty bearer", "Bearer ", http.StatusUnauthorized, `Bearer realm="strata"`},
			{"wrong token", "Bearer " + wrong, http.StatusUnauthorized, `Bearer realm="strata", error="invalid_token"`},
			{"token prefix", "Bearer " + ts.admin[:40], http.StatusUnauthorized, `Bearer realm="strata", error="invalid_token"`},
			{"good token", "Bearer " + ts.admin, http.StatusOK, ""},
			{"scheme in lower case", "bearer " + ts.admin, http.StatusOK, ""},
		} {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				want := tc.wantCode
				if want == http.StatusOK && strings.HasSuffix(path, "/nope") {
					want = http.StatusNotFound // authenticated, then routed
				}
				code, challenge, body := ts.get(t, path, tc.auth)
				if code != want {
					t.Fatalf("code %d, want %d: %s", code, want, body)
				}
				if challenge != tc.challenge {
					t.Errorf("WWW-Authenticate %q, want %q", challenge, tc.challenge)
				}
				if code != http.StatusUnauthorized {
					return
				}
				var st Status
				if err := json.Unmarshal(body, &st); err != nil {
					t.Fatalf("401 body is not a Status: %v: %s", err, body)
				}
				if st.Kind != "Status" || st.Reason != ReasonUnauthorized || st.Code != http.StatusUnauthorized || st.Message == "" {
					t.Errorf("401 body: %+v", st)
				}
			})
		}
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, "token=admin") {
		t.Errorf("the token name is not logged:\n%s", logs)
	}
	if strings.Contains(logs, ts.admin[:16]) || strings.Contains(logs, wrong[:16]) {
		t.Errorf("a token is logged:\n%s", logs)
	}
}

func TestTokenFileChanges(t *testing.T) {
	ts := startTLS(t)
	path := filepath.Join(ts.dir, TokensFile)
	ci := strings.Repeat("c1", 20)
	api := Prefix + "workloads"
	bearer := func(tok string) string { return "Bearer " + tok }
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name    string
		content string        // new file content; "-" removes the file; "" leaves it
		advance time.Duration // clock advance after the change
		want    map[string]int
	}{
		{"initial", "", 0, map[string]int{ts.admin: 200, ci: 401}},
		{"added, not yet seen", "admin " + ts.admin + "\nci " + ci + "\n", 0, map[string]int{ts.admin: 200, ci: 401}},
		{"added, seen after a second", "", time.Second, map[string]int{ts.admin: 200, ci: 200}},
		{"admin revoked", "ci " + ci + "\n", time.Second, map[string]int{ts.admin: 401, ci: 200}},
		{"same size, other token", "ci " + strings.Repeat("c2", 20) + "\n", time.Second, map[string]int{ts.admin: 401, ci: 401}},
		{"file removed: nobody", "-", time.Second, map[string]int{ts.admin: 401, ci: 401}},
		{"file back", "admin " + ts.admin + "\n", time.Second, map[string]int{ts.admin: 200, ci: 401}},
		{"bad lines ignored, good kept", "oops\nshort abc\nci " + ci + "\n", time.Second, map[string]int{ts.admin: 401, ci: 200}},
	}
	for _, s := range steps {
		switch s.content {
		case "":
		case "-":
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		default:
			write(s.content)
		}
		ts.clock.Advance(s.advance)
		for tok, want := range s.want {
			if code, _, body := ts.get(t, api, bearer(tok)); code != want {
				t.Errorf("%s: token %.4s...: code %d, want %d: %s", s.name, tok, code, want, body)
			}
		}
	}
	if logs := ts.logs.String(); strings.Contains(logs, "abc") || strings.Contains(logs, ci[:10]) {
		t.Errorf("a token is logged:\n%s", logs)
	}
}

func TestOpenTokensCreatesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), TokensFile)
	if _, err := OpenTokens(path, TokensOptions{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tok := firstToken(t, path)
	if len(tok) != 64 || strings.Trim(tok, "0123456789abcdef") != "" {
		t.Errorf("admin token %q is not 32 bytes in hex", tok)
	}
	tokens, err := OpenTokens(path, TokensOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(first, again) {
		t.Errorf("a second open rewrote the file:\n%s\n->\n%s", first, again)
	}
	if name, ok := tokens.Lookup(tok); !ok || name != "admin" {
		t.Errorf("Lookup(admin token) = %q, %v", name, ok)
	}
	if _, ok := tokens.Lookup(""); ok {
		t.Error("the empty token is accepted")
	}
}

func TestParseTokens(t *testing.T) {
	long := strings.Repeat("a", MinTokenLen)
	tests := []struct {
		name      string
		in        string
		names     []string
		problemAt []int
	}{
		{"empty", "", nil, nil},
		{"comments and blanks", "# c\n\n   \n\t# x y\n", nil, nil},
		{"one", "admin " + long + "\n", []string{"admin"}, nil},
		{"spacing and CRLF", "  admin\t" + long + "  \r\nci " + long + "b", []string{"admin", "ci"}, nil},
		{"token alone", long + "\n", nil, []int{1}},
		{"three fields", "a b c\nok " + long, []string{"ok"}, []int{1}},
		{"short token", "# tokens\nweak 123\n", nil, []int{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			entries, problems := parseTokens([]byte(tc.in))
			var names []string
			for _, e := range entries {
				names = append(names, e.name)
			}
			if strings.Join(names, ",") != strings.Join(tc.names, ",") {
				t.Errorf("names %v, want %v", names, tc.names)
			}
			var at []int
			for _, p := range problems {
				at = append(at, p.line)
			}
			if len(at) != len(tc.problemAt) || (len(at) > 0 && at[0] != tc.problemAt[0]) {
				t.Errorf("problems at lines %v, want %v (%+v)", at, tc.problemAt, problems)
			}
		})
	}
}

func FuzzParseTokens(f *testing.F) {
	f.Add([]byte("admin " + strings.Repeat("ab", 32) + "\n"))
	f.Add([]byte("# c\n\nci " + strings.Repeat("x", 40) + "\r\nbad\nweak 1\n"))
	f.Add([]byte("a b c\n\x00\xff " + strings.Repeat("z", 33)))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, problems := parseTokens(data)
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, e := range entries {
			if e.name == "" || strings.ContainsFunc(e.name, unicode.IsSpace) || strings.HasPrefix(e.name, "#") {
				t.Errorf("entry name %q", e.name)
			}
		}
		for _, p := range problems {
			if p.line < 1 || p.line > lines+1 || p.msg == "" {
				t.Errorf("problem %+v (input has %d lines)", p, lines)
			}
		}
		// Every token found is accepted under its name, and no problem quotes the
		// token of its line.
		lineText := slices.Collect(strings.Lines(string(data)))
		fixed := time.Unix(1e9, 0)
		tk := &Tokens{entries: entries, now: func() time.Time { return fixed }, checked: fixed, log: slog.New(slog.DiscardHandler)}
		for _, line := range lineText {
			f := strings.Fields(line)
			if len(f) != 2 || strings.HasPrefix(f[0], "#") || len(f[1]) < MinTokenLen {
				continue
			}
			if _, ok := tk.Lookup(f[1]); !ok {
				t.Errorf("token of %q not accepted", f[0])
			}
		}
		for _, p := range problems {
			if p.line > len(lineText) {
				continue
			}
			f := strings.Fields(lineText[p.line-1])
			for _, field := range f[min(1, len(f)):] {
				if len(field) >= 12 && !strings.Contains(strconv.Quote(f[0]), field) && strings.Contains(p.msg, field) {
					t.Errorf("problem %q quotes a token", p.msg)
				}
			}
		}
	})
}
