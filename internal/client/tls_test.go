package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/server"
	"strata.dev/strata/internal/store"
)

// daemon is an API server behind ServeTLS with freshly made material.
type daemon struct {
	url, caFile, tokenFile, token string
	addr                          string
}

// serveTLS serves the API on a TCP listener at listen with TLS material issued for
// certFor, and returns how to reach it.
func serveTLS(t *testing.T, listen, certFor string) daemon {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "strata.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tlsDir := filepath.Join(dir, "tls")
	mat, err := server.EnsureTLS(server.TLSOptions{Dir: tlsDir, Listen: certFor})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(tlsDir, server.TokensFile)
	tokens, err := server.OpenTokens(tokenFile, server.TokensOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token, err := client.ReadTokenFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		t.Skipf("cannot listen on %s here: %v", listen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.New(server.Options{Store: st}).ServeTLS(ctx, l, mat.ServerConfig(), tokens) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = st.Close()
	})
	return daemon{url: "https://" + l.Addr().String(), caFile: mat.CAFile, tokenFile: tokenFile, token: token, addr: l.Addr().String()}
}

const web = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: web}
spec: {image: localhost/web:1}
`

func TestNewTLSWithTheDaemonsToken(t *testing.T) {
	d := serveTLS(t, "127.0.0.1:0", "127.0.0.1:0")
	for _, u := range []string{d.url, d.url + "/", strings.Replace(d.url, "127.0.0.1", "localhost", 1)} {
		c, err := client.NewTLS(u, d.caFile, d.token)
		if err != nil {
			t.Fatal(err)
		}
		var list server.List
		if err := c.List(context.Background(), "workloads", &list); err != nil {
			t.Errorf("%s: list: %v", u, err)
		}
	}
	c, err := client.NewTLS(d.url, d.caFile, d.token)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var w v1alpha1.Workload
	if err := c.Create(ctx, "workloads", []byte(web), false, &w); err != nil {
		t.Fatal(err)
	}
	var got v1alpha1.Workload
	if err := c.Get(ctx, "workloads", "web", &got); err != nil || got.Metadata.UID != w.Metadata.UID {
		t.Errorf("get after create: %v", err)
	}
}

func TestNewTLSRefusals(t *testing.T) {
	d := serveTLS(t, "127.0.0.1:0", "127.0.0.1:0")
	other := serveTLS(t, "127.0.0.1:0", "127.0.0.1:0")
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 0}
	go func() { _ = hs.Serve(plain) }()
	t.Cleanup(func() { _ = hs.Close() })

	tests := []struct {
		name        string
		url, ca     string
		token       string
		want        string
		reason      string // the APIError reason, or "" for a connection error
		unreachable bool
	}{
		{"wrong token", d.url, d.caFile, strings.Repeat("f", 64),
			"the daemon refused the token: check --token-file", server.ReasonUnauthorized, false},
		{"another daemon's token", d.url, d.caFile, other.token,
			"the daemon refused the token", server.ReasonUnauthorized, false},
		{"another daemon's CA", d.url, other.caFile, d.token,
			"not signed by the CA in " + other.caFile + ": check --ca-file", "", true},
		{"plain HTTP on the port", "https://" + plain.Addr().String(), d.caFile, d.token,
			"does not speak TLS", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.NewTLS(tc.url, tc.ca, tc.token)
			if err != nil {
				t.Fatal(err)
			}
			var list server.List
			err = c.List(context.Background(), "workloads", &list)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if got := client.Reason(err); got != tc.reason {
				t.Errorf("reason %q, want %q", got, tc.reason)
			}
			if errors.Is(err, client.ErrUnreachable) != tc.unreachable {
				t.Errorf("errors.Is(ErrUnreachable) = %v", !tc.unreachable)
			}
			if strings.Contains(err.Error(), d.token) {
				t.Error("the error shows the token")
			}
		})
	}
}

func TestNewTLSHostNotInCertificate(t *testing.T) {
	// Served on 127.0.0.2 with a certificate made for 127.0.0.1 only.
	d := serveTLS(t, "127.0.0.2:0", "127.0.0.1:7443")
	c, err := client.NewTLS(d.url, d.caFile, d.token)
	if err != nil {
		t.Fatal(err)
	}
	var list server.List
	err = c.List(context.Background(), "workloads", &list)
	if err == nil || !strings.Contains(err.Error(), "does not name 127.0.0.2") || !strings.Contains(err.Error(), "--listen 127.0.0.2:PORT") {
		t.Fatalf("error %v, want one naming the host and --listen", err)
	}
}

func TestNewTLSArguments(t *testing.T) {
	dir := t.TempDir()
	d := serveTLS(t, "127.0.0.1:0", "127.0.0.1:0")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, url, ca, token, want string
	}{
		{"http scheme", "http://127.0.0.1:7443", d.caFile, d.token, "give https://HOST:PORT"},
		{"no scheme", "127.0.0.1:7443", d.caFile, d.token, "give https://HOST:PORT"},
		{"a path", "https://127.0.0.1:7443/apis", d.caFile, d.token, "give https://HOST:PORT"},
		{"user info", "https://u:p@127.0.0.1:7443", d.caFile, d.token, "give https://HOST:PORT"},
		{"bad URL", "https://[::1", d.caFile, d.token, "give https://HOST:PORT"},
		{"no CA", d.url, "", d.token, "--ca-file"},
		{"missing CA file", d.url, filepath.Join(dir, "nope.crt"), d.token, "read the CA certificate"},
		{"CA file without PEM", d.url, notPEM, d.token, "holds no PEM certificate"},
		{"no token", d.url, d.caFile, "", "--token-file"},
		{"token with a space", d.url, d.caFile, "admin " + d.token, "spaces or control characters"},
		{"token with a newline", d.url, d.caFile, d.token + "\r\nX-Evil: 1", "spaces or control characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.NewTLS(tc.url, tc.ca, tc.token)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestReadTokenFile(t *testing.T) {
	tok := strings.Repeat("ab", 32)
	tests := []struct {
		name, content, want, wantErr string
	}{
		{"token alone", tok + "\n", tok, ""},
		{"no newline", tok, tok, ""},
		{"the daemon's file", "# strata API tokens\n\nadmin " + tok + "\nci " + strings.Repeat("c", 64) + "\n", tok, ""},
		{"CRLF and spaces", "  \r\n\t" + tok + "  \r\n", tok, ""},
		{"empty", "", "", "holds no token"},
		{"comments only", "# a\n# b\n", "", "holds no token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := client.ReadTokenFile(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ReadTokenFile = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := client.ReadTokenFile(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "read the token file") {
		t.Errorf("missing file: %v", err)
	}
}
