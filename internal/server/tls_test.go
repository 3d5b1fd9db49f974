package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEnsureTLSCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Now()
	m, err := EnsureTLS(TLSOptions{Dir: dir, Listen: "strata.example:7443", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if !m.CreatedCA || !m.IssuedCert {
		t.Errorf("first start: CreatedCA %v IssuedCert %v, want both", m.CreatedCA, m.IssuedCert)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v %v, want mode 0700", fi.Mode(), err)
	}
	for _, f := range []string{CACertFile, CAKeyFile, ServerCertFile, ServerKeyFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, want mode 0600", f, err)
		}
	}
	if m.CAFile != filepath.Join(dir, CACertFile) {
		t.Errorf("CAFile %s", m.CAFile)
	}
	ca, leaf := m.CA, m.Leaf
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("the CA cannot sign: IsCA %v usage %v", ca.IsCA, ca.KeyUsage)
	}
	for name, c := range map[string]*x509.Certificate{"CA": ca, "server": leaf} {
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s key is %T, want ECDSA P-256", name, c.PublicKey)
		}
	}
	if d := ca.NotAfter.Sub(now); d < CALifetime-time.Hour || d > CALifetime+time.Hour {
		t.Errorf("CA valid for %v, want %v", d, CALifetime)
	}
	if d := leaf.NotAfter.Sub(now); d < ServerLifetime-time.Hour || d > ServerLifetime+time.Hour {
		t.Errorf("server certificate valid for %v, want %v", d, ServerLifetime)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	host, _ := os.Hostname()
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "strata.example", host} {
		if !validDNSName(name) && net.ParseIP(name) == nil {
			continue
		}
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: now}); err != nil {
			t.Errorf("the server certificate does not verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.example", Roots: roots, CurrentTime: now}); err == nil {
		t.Error("the server certificate verifies for a name it was not issued for")
	}
	if cfg := m.ServerConfig(); cfg.MinVersion != tls.VersionTLS13 || len(cfg.Certificates) != 1 {
		t.Errorf("server config: min version %x, %d certificates", cfg.MinVersion, len(cfg.Certificates))
	}
	if fp := m.Fingerprint(); len(fp) != 32*3-1 || strings.Trim(fp, "0123456789ABCDEF:") != "" {
		t.Errorf("fingerprint %q", fp)
	}
}

func TestEnsureTLSWildcardListen(t *testing.T) {
	for _, listen := range []string{"", ":7443", "0.0.0.0:7443", "[::]:7443"} {
		m, err := EnsureTLS(TLSOptions{Dir: t.TempDir(), Listen: listen})
		if err != nil {
			t.Fatalf("%q: %v", listen, err)
		}
		var ips []string
		for _, ip := range m.Leaf.IPAddresses {
			if ip.IsUnspecified() {
				t.Errorf("%q: the certificate names the wildcard address %s", listen, ip)
			}
			ips = append(ips, ip.String())
		}
		if !strings.Contains(strings.Join(ips, " "), "127.0.0.1") {
			t.Errorf("%q: IPs %v lack 127.0.0.1", listen, ips)
		}
	}
}

func TestEnsureTLSReusesAndRenews(t *testing.T) {
	start := time.Now()
	tests := []struct {
		name    string
		change  func(t *testing.T, dir string) // applied before the second start
		opts    TLSOptions                     // of the second start (Dir is filled in)
		renewed bool
	}{
		{name: "same address", opts: TLSOptions{Listen: "127.0.0.1:7443"}},
		{name: "another port", opts: TLSOptions{Listen: "127.0.0.1:9000"}},
		{name: "a name the certificate holds", opts: TLSOptions{Listen: "localhost:7443"}},
		{name: "still 300 days", opts: TLSOptions{Listen: "127.0.0.1:7443", Now: after(start, 65*24*time.Hour)}},
		{name: "new listen IP", opts: TLSOptions{Listen: "192.0.2.7:7443"}, renewed: true},
		{name: "new listen name", opts: TLSOptions{Listen: "strata.example:7443"}, renewed: true},
		{name: "extra host", opts: TLSOptions{Listen: "127.0.0.1:7443", Hosts: []string{"api.example"}}, renewed: true},
		{name: "ends within 30 days", opts: TLSOptions{Listen: "127.0.0.1:7443", Now: after(start, 340*24*time.Hour)}, renewed: true},
		{name: "expired", opts: TLSOptions{Listen: "127.0.0.1:7443", Now: after(start, 400*24*time.Hour)}, renewed: true},
		{name: "key lost", opts: TLSOptions{Listen: "127.0.0.1:7443"}, renewed: true,
			change: func(t *testing.T, dir string) { remove(t, filepath.Join(dir, ServerKeyFile)) }},
		{name: "certificate garbled", opts: TLSOptions{Listen: "127.0.0.1:7443"}, renewed: true,
			change: func(t *testing.T, dir string) { garble(t, filepath.Join(dir, ServerCertFile)) }},
		{name: "certificate of another CA", opts: TLSOptions{Listen: "127.0.0.1:7443"}, renewed: true,
			change: func(t *testing.T, dir string) {
				other := t.TempDir()
				if _, err := EnsureTLS(TLSOptions{Dir: other, Listen: "127.0.0.1:7443"}); err != nil {
					t.Fatal(err)
				}
				for _, f := range []string{ServerCertFile, ServerKeyFile} {
					data, err := os.ReadFile(filepath.Join(other, f))
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			first, err := EnsureTLS(TLSOptions{Dir: dir, Listen: "127.0.0.1:7443", Now: func() time.Time { return start }})
			if err != nil {
				t.Fatal(err)
			}
			if tc.change != nil {
				tc.change(t, dir)
			}
			o := tc.opts
			o.Dir = dir
			if o.Now == nil {
				o.Now = func() time.Time { return start }
			}
			second, err := EnsureTLS(o)
			if err != nil {
				t.Fatal(err)
			}
			if second.CreatedCA || second.Fingerprint() != first.Fingerprint() {
				t.Errorf("the CA changed: %s -> %s", first.Fingerprint(), second.Fingerprint())
			}
			renewed := second.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) != 0
			if renewed != tc.renewed || second.IssuedCert != tc.renewed {
				t.Errorf("renewed %v (IssuedCert %v), want %v", renewed, second.IssuedCert, tc.renewed)
			}
			if err := second.Leaf.CheckSignatureFrom(first.CA); err != nil {
				t.Errorf("the server certificate is not signed by the CA: %v", err)
			}
			// What was written is what a third start reuses.
			third, err := EnsureTLS(o)
			if err != nil {
				t.Fatal(err)
			}
			if third.IssuedCert || third.Leaf.SerialNumber.Cmp(second.Leaf.SerialNumber) != 0 {
				t.Errorf("third start issued again: %v", third.IssuedCert)
			}
		})
	}
}

func after(t time.Time, d time.Duration) func() time.Time {
	return func() time.Time { return t.Add(d) }
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func garble(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureTLSRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		listen string
		want   string
	}{
		{"CA key lost", func(t *testing.T, dir string) { remove(t, filepath.Join(dir, CAKeyFile)) }, "127.0.0.1:1", "remove both"},
		{"CA certificate lost", func(t *testing.T, dir string) { remove(t, filepath.Join(dir, CACertFile)) }, "127.0.0.1:1", "remove both"},
		{"CA garbled", func(t *testing.T, dir string) { garble(t, filepath.Join(dir, CACertFile)) }, "127.0.0.1:1", "load the CA"},
		{"CA replaced by a server certificate", func(t *testing.T, dir string) {
			for _, p := range [][2]string{{ServerCertFile, CACertFile}, {ServerKeyFile, CAKeyFile}} {
				data, err := os.ReadFile(filepath.Join(dir, p[0]))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, p[1]), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}, "127.0.0.1:1", "not an ECDSA certificate authority"},
		{"listen without a port", nil, "127.0.0.1", "give HOST:PORT"},
		{"listen host not a name", nil, "bad_host!:7443", "neither an IP nor a DNS name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := EnsureTLS(TLSOptions{Dir: dir, Listen: "127.0.0.1:7443"}); err != nil {
				t.Fatal(err)
			}
			if tc.change != nil {
				tc.change(t, dir)
			}
			before, _ := os.ReadFile(filepath.Join(dir, CACertFile))
			_, err := EnsureTLS(TLSOptions{Dir: dir, Listen: tc.listen})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if after, _ := os.ReadFile(filepath.Join(dir, CACertFile)); string(after) != string(before) {
				t.Error("a refused start changed ca.crt")
			}
		})
	}
}

// dialTLS handshakes with a ServeTLS listener using roots and at most maxVersion.
func dialTLS(ctx context.Context, addr string, roots *x509.CertPool, maxVersion uint16) error {
	d := tls.Dialer{Config: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12, MaxVersion: maxVersion}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

func TestServeTLSHandshake(t *testing.T) {
	ts := startTLS(t)
	addr := strings.TrimPrefix(ts.url, "https://")
	other, err := EnsureTLS(TLSOptions{Dir: t.TempDir(), Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	pool := func(m *TLSMaterial) *x509.CertPool {
		p := x509.NewCertPool()
		p.AddCert(m.CA)
		return p
	}
	ctx := context.Background()
	if err := dialTLS(ctx, addr, pool(ts.mat), tls.VersionTLS13); err != nil {
		t.Errorf("handshake with the daemon's CA: %v", err)
	}
	var unknown x509.UnknownAuthorityError
	if err := dialTLS(ctx, addr, pool(other), tls.VersionTLS13); !errors.As(err, &unknown) {
		t.Errorf("handshake with another CA: %v, want an unknown authority", err)
	}
	if err := dialTLS(ctx, addr, pool(ts.mat), tls.VersionTLS12); err == nil {
		t.Error("a TLS 1.2 client was served")
	}
}
