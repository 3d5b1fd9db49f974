package server

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// TokensFile is the name of the token file in the TLS directory.
const TokensFile = "tokens"

// MinTokenLen is the shortest token the token file may hold.
const MinTokenLen = 32

// reloadEvery bounds how often the token file is checked for changes.
const reloadEvery = time.Second

// TokensOptions configure a token file.
type TokensOptions struct {
	Logger *slog.Logger
	// Now is the clock that spaces the checks for changes; nil: time.Now.
	Now func() time.Time
}

// Tokens are the bearer tokens of the token file: one `NAME TOKEN` per line, blank
// lines and lines starting with # ignored. The file is checked for changes at most once
// a second, so a token removed from it stops working without a restart. A file that
// cannot be read admits nobody.
type Tokens struct {
	path string
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex
	checked time.Time         // when the file was last looked at
	stamp   fileStamp         // what the file looked like when it was read
	racy    bool              // the file changed so recently that a change may not show in its stamp
	entries []tokenHash       // what it held; nil until read
	content [sha256.Size]byte // the SHA-256 of what it held
	broken  bool              // the last look failed (logged once)
}

type tokenHash struct {
	name string
	sum  [sha256.Size]byte
}

type fileStamp struct {
	mod  time.Time
	size int64
	info fs.FileInfo
}

func (a fileStamp) same(b fileStamp) bool {
	return a.info != nil && b.info != nil && a.mod.Equal(b.mod) && a.size == b.size && os.SameFile(a.info, b.info)
}

// OpenTokens reads the token file at path. When it does not exist it is created (mode
// 0600) with one token named admin: 32 random bytes in hex.
func OpenTokens(path string, o TokensOptions) (*Tokens, error) {
	t := &Tokens{path: path, log: o.Logger, now: o.Now}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.now == nil {
		t.now = time.Now
	}
	if err := createTokens(path); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.log.Warn("the token file is readable by others", "path", path, "mode", fi.Mode().Perm().String(), "hint", "chmod 600 "+path)
	}
	if err := t.load(); err != nil {
		return nil, err
	}
	t.checked = t.now()
	return t, nil
}

// Path returns the token file's path.
func (t *Tokens) Path() string { return t.path }

// createTokens writes a new token file with an admin token unless one exists.
func createTokens(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create the token file: %w", err)
	}
	tok, err := NewToken()
	if err == nil {
		_, err = fmt.Fprintf(f, "# strata API tokens: one \"NAME TOKEN\" per line; remove a line to revoke its token.\nadmin %s\n", tok)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path) // a half-written file would admit nobody
		return fmt.Errorf("create the token file: %w", err)
	}
	return nil
}

// NewToken returns a fresh token: 32 random bytes in hex.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("draw a token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// tokenProblem is a line of a token file that was ignored.
type tokenProblem struct {
	line int
	msg  string
}

// parseTokens reads a token file's content: each token's name and SHA-256, and the lines
// it ignored (their messages never hold a token).
func parseTokens(data []byte) ([]tokenHash, []tokenProblem) {
	var (
		entries  []tokenHash
		problems []tokenProblem
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		switch {
		case len(fields) != 2:
			problems = append(problems, tokenProblem{line, fmt.Sprintf("want NAME TOKEN, found %d fields", len(fields))})
		case len(fields[1]) < MinTokenLen:
			problems = append(problems, tokenProblem{line, fmt.Sprintf("the token of %q is shorter than %d characters (make one with `openssl rand -hex 32`)", fields[0], MinTokenLen)})
		default:
			entries = append(entries, tokenHash{name: fields[0], sum: sha256.Sum256([]byte(fields[1]))})
		}
	}
	if err := sc.Err(); err != nil {
		problems = append(problems, tokenProblem{line + 1, err.Error()})
	}
	return entries, problems
}

// load reads the file; callers hold t.mu (or own t).
func (t *Tokens) load() error {
	f, err := os.Open(t.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return fmt.Errorf("token file %s: %w", t.path, err)
	}
	t.stamp = fileStamp{mod: fi.ModTime(), size: fi.Size(), info: fi}
	// A write within the file system's timestamp granularity of this read may leave the
	// stamp unchanged: read such a file again at the next check.
	t.racy = t.now().Sub(fi.ModTime()).Abs() < 2*time.Second
	sum := sha256.Sum256(buf.Bytes())
	if t.entries != nil && sum == t.content {
		return nil // read again, unchanged
	}
	entries, problems := parseTokens(buf.Bytes())
	for _, p := range problems {
		t.log.Warn("token file line ignored", "path", t.path, "line", p.line, "problem", p.msg)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.name
	}
	t.entries, t.content = entries, sum
	if t.entries == nil {
		t.entries = []tokenHash{} // loaded, if empty
	}
	t.log.Info("tokens loaded", "path", t.path, "names", names)
	return nil
}

// refresh re-reads the file when it changed, at most once per reloadEvery; callers hold t.mu.
func (t *Tokens) refresh() {
	now := t.now()
	if now.Sub(t.checked) < reloadEvery && !now.Before(t.checked) {
		return
	}
	t.checked = now
	fi, err := os.Stat(t.path)
	if err == nil && !t.racy && t.stamp.same(fileStamp{mod: fi.ModTime(), size: fi.Size(), info: fi}) {
		return
	}
	if err == nil {
		err = t.load()
	}
	if err != nil {
		t.entries, t.stamp, t.racy = nil, fileStamp{}, false
		if !t.broken {
			t.log.Error("token file unreadable: no token is accepted until it is fixed", "path", t.path, "err", err)
		}
		t.broken = true
		return
	}
	t.broken = false
}

// Lookup returns the name of token, or false when the file does not hold it. Every
// stored token is compared, in constant time, whatever matches. Nil Tokens admit nobody.
func (t *Tokens) Lookup(token string) (string, bool) {
	if t == nil {
		return "", false
	}
	sum := sha256.Sum256([]byte(token))
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refresh()
	name, found := "", 0
	for _, e := range t.entries {
		match := subtle.ConstantTimeCompare(e.sum[:], sum[:])
		if match == 1 && found == 0 {
			name = e.name
		}
		found |= match
	}
	return name, found == 1 && token != ""
}

// RequireToken answers every request that lacks a token known to tokens with 401
// Unauthorized, a JSON Status and a WWW-Authenticate challenge, and closes its connection;
// the others reach next. Refusals are logged at a bounded rate (the first of a minute at
// WARN, the rest summed up); the token's name (never the token) is logged at debug level.
func RequireToken(next http.Handler, tokens *Tokens, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return requireToken(next, tokens, log, newRefusals(log, DefaultRefusalLogInterval))
}

func requireToken(next http.Handler, tokens *Tokens, log *slog.Logger, refused *refusals) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			refused.note("request without a token refused", "method", r.Method, "path", clip(r.URL.Path), "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
			w.Header().Set("Connection", "close") // a client without a token gets nothing more from it
			writeStatus(w, http.StatusUnauthorized, ReasonUnauthorized,
				"this API needs a bearer token: send the header Authorization: Bearer TOKEN (strata --token-file)")
			return
		}
		name, ok := tokens.Lookup(token)
		if !ok {
			refused.note("request with an unknown token refused", "method", r.Method, "path", clip(r.URL.Path), "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="strata", error="invalid_token"`)
			w.Header().Set("Connection", "close")
			writeStatus(w, http.StatusUnauthorized, ReasonUnauthorized, "the token is not valid: it is unknown or was revoked")
			return
		}
		log.Debug("request", "token", name, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		next.ServeHTTP(w, r)
	})
}

// clip shortens what a client sent to at most 256 bytes for a log line.
func clip(s string) string {
	if len(s) > 256 {
		return s[:256] + "..."
	}
	return s
}

// bearer extracts the token of an `Authorization: Bearer TOKEN` header.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
