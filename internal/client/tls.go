package client

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"strata.dev/strata/api/wire"
)

// NewTLS returns a client for a daemon's TCP listener at serverURL (https://HOST:PORT).
// It trusts only the CA certificate in caFile (the daemon's DATA_DIR/tls/ca.crt) and
// sends token as a bearer token with every request. A certificate the CA did not sign
// fails the handshake; a token the daemon refuses comes back as an *APIError with reason
// Unauthorized that says to check the token file.
func NewTLS(serverURL, caFile, token string) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w (give https://HOST:PORT)", serverURL, err)
	}
	if u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("server address %q: give https://HOST:PORT (the daemon serves TCP over TLS only)", serverURL)
	}
	if caFile == "" {
		return nil, errors.New("no CA certificate: give the daemon's CA with --ca-file (it is DATA_DIR/tls/ca.crt on the daemon's host)")
	}
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read the CA certificate: %w (--ca-file names the daemon's DATA_DIR/tls/ca.crt)", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("%s holds no PEM certificate: give the daemon's DATA_DIR/tls/ca.crt with --ca-file", caFile)
	}
	if token == "" {
		return nil, errors.New("no token: give a token file with --token-file or the token in STRATA_TOKEN")
	}
	if strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, errors.New("the token holds spaces or control characters: give the token alone, as written in the daemon's token file")
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool},
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
	}
	rt := &bearerTransport{next: tr, token: token, caFile: caFile, host: u.Hostname()}
	return &Client{http: &http.Client{Transport: rt}, base: "https://" + u.Host,
		hint: "is `strata serve --listen` running at " + u.Host + "? --server or STRATA_SERVER selects another daemon"}, nil
}

// bearerTransport adds the token to each request and turns TLS and token failures
// into errors that say what to fix.
type bearerTransport struct {
	next   http.RoundTripper
	token  string
	caFile string
	host   string
}

func (t *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+t.token)
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, t.explain(err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		refused(resp)
	}
	return resp, nil
}

// explain names the likely cause of a failed handshake.
func (t *bearerTransport) explain(err error) error {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("the daemon's certificate is not signed by the CA in %s: check --ca-file (the daemon's CA is DATA_DIR/tls/ca.crt on its host): %w", t.caFile, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("the daemon's certificate does not name %s: connect by a name it holds, or restart the daemon with --listen %s:PORT so its certificate names it: %w", t.host, t.host, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("the daemon's certificate is not valid now (check both hosts' clocks; a restart of the daemon renews its certificate): %w", err)
	case errors.As(err, &record):
		return fmt.Errorf("the daemon at %s does not speak TLS: check the port of --server: %w", t.host, err)
	}
	return err
}

// refused replaces the body of a 401 answer with a Status that says to check the token.
func refused(resp *http.Response) {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	var st wire.Status
	if json.Unmarshal(b, &st) != nil || st.Kind != "Status" {
		st = wire.Status{APIVersion: "v1", Kind: "Status", Code: resp.StatusCode, Reason: wire.ReasonUnauthorized}
	}
	st.Message = "the daemon refused the token: check --token-file (or STRATA_TOKEN)"
	st.Details = nil
	out, _ := json.Marshal(st)
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Del("Content-Length")
}

// ReadTokenFile returns the token in a file: the last field of its first line that is
// neither blank nor a # comment. Both a file holding just the token and the daemon's own
// token file (`NAME TOKEN` lines, whose first token is taken) work.
func ReadTokenFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the token file: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		return f[len(f)-1], nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read the token file %s: %w", path, err)
	}
	return "", fmt.Errorf("the token file %s holds no token: put the token on a line of its own", path)
}
