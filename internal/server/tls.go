package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Names of the TLS material in the directory given to EnsureTLS.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
)

// Lifetimes of the generated certificates, and how long before its end a server
// certificate is replaced.
const (
	CALifetime     = 10 * 365 * 24 * time.Hour
	ServerLifetime = 365 * 24 * time.Hour
	RenewBefore    = 30 * 24 * time.Hour
)

// TLSOptions say where the TLS material lives and which names the server certificate covers.
type TLSOptions struct {
	// Dir holds ca.crt, ca.key, server.crt and server.key; created with mode 0700.
	Dir string
	// Listen is the TCP listen address (HOST:PORT). A named host or IP is added to the
	// certificate; an empty or wildcard host adds the addresses of the host's interfaces.
	Listen string
	// Hosts are further DNS names or IPs the certificate must cover.
	Hosts []string
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// TLSMaterial is the daemon's CA and server certificate, loaded or created by EnsureTLS.
type TLSMaterial struct {
	// CAFile is the path of the CA certificate that clients pin (--ca-file).
	CAFile string
	// CA is the certificate authority that signed the server certificate.
	CA *x509.Certificate
	// Leaf is the server certificate.
	Leaf *x509.Certificate
	// CreatedCA and IssuedCert say what this call generated (false: reused from Dir).
	CreatedCA, IssuedCert bool

	cert tls.Certificate
}

// EnsureTLS loads the CA and server certificate under o.Dir, creating them on first
// use: a self-signed ECDSA P-256 CA valid for ten years, and a server certificate signed
// by it for one year naming localhost, 127.0.0.1, ::1, the host name and the listen
// host. A server certificate that ends within RenewBefore, lacks a required name, was
// not signed by the CA or does not match its key is issued anew; the CA is never
// replaced, because clients pin it.
func EnsureTLS(o TLSOptions) (*TLSMaterial, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the TLS directory: %w", err)
	}
	if err := os.Chmod(o.Dir, 0o700); err != nil { //nolint:gosec // G302 is about files; a directory needs x to be entered, and 0700 is the owner's alone
		return nil, fmt.Errorf("restrict the TLS directory: %w", err)
	}
	want, err := requiredNames(o.Listen, o.Hosts)
	if err != nil {
		return nil, err
	}
	m := &TLSMaterial{CAFile: filepath.Join(o.Dir, CACertFile)}
	caCert, caKey, err := loadOrCreateCA(o.Dir, now(), &m.CreatedCA)
	if err != nil {
		return nil, err
	}
	m.CA = caCert
	certPath, keyPath := filepath.Join(o.Dir, ServerCertFile), filepath.Join(o.Dir, ServerKeyFile)
	if cert, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && serverCertUsable(cert.Leaf, caCert, want, now()) {
		m.cert, m.Leaf = cert, cert.Leaf
		return m, nil
	}
	leaf, key, err := issueServerCert(caCert, caKey, want, now())
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode the server key: %w", err)
	}
	// The key goes first: a crash between the two writes leaves a certificate that does
	// not match its key, which the next start replaces.
	if err := writePEM(keyPath, "PRIVATE KEY", keyDER); err != nil {
		return nil, err
	}
	if err := writePEM(certPath, "CERTIFICATE", leaf.Raw); err != nil {
		return nil, err
	}
	m.cert = tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	m.Leaf, m.IssuedCert = leaf, true
	return m, nil
}

// ServerConfig returns the TLS configuration of the listener: TLS 1.3 only, the server
// certificate, and no client certificates (clients authenticate with bearer tokens).
func (m *TLSMaterial) ServerConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{m.cert}}
}

// Fingerprint returns the SHA-256 of the CA certificate as colon-separated hex, the
// form `openssl x509 -noout -fingerprint -sha256 -in ca.crt` prints, for people to
// check the ca.crt they were given.
func (m *TLSMaterial) Fingerprint() string {
	sum := sha256.Sum256(m.CA.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// ServeTLS serves the API on l over TLS with cfg, answering only requests that carry a
// token from tokens, until ctx ends; then it shuts down gracefully. Connections over the
// caps of Options.Limits are closed as soon as they are accepted.
func (s *Server) ServeTLS(ctx context.Context, l net.Listener, cfg *tls.Config, tokens *Tokens) error {
	hs := &http.Server{Handler: publicUI(s.h, requireToken(s.h, tokens, s.log, s.refused)),
		ReadHeaderTimeout: s.limits.ReadHeaderTimeout, IdleTimeout: s.limits.IdleTimeout,
		BaseContext: func(net.Listener) context.Context { return ctx },
		// Failed handshakes (a client without the CA, a port scan) are the clients' problem.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	return serveUntil(ctx, hs, tls.NewListener(newCapListener(l, s.limits, s.refused), cfg))
}

// certNames are the DNS names and IPs a server certificate carries.
type certNames struct {
	dns []string
	ips []netip.Addr
}

func (n *certNames) add(host string) {
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" {
		return
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.WithZone("").Unmap()
		if !slices.Contains(n.ips, ip) {
			n.ips = append(n.ips, ip)
		}
		return
	}
	host = strings.ToLower(host)
	if !slices.Contains(n.dns, host) {
		n.dns = append(n.dns, host)
	}
}

// requiredNames lists what the server certificate must name for the listen address.
func requiredNames(listen string, extra []string) (certNames, error) {
	var n certNames
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		n.add(h)
	}
	if h, err := os.Hostname(); err == nil && validDNSName(h) {
		n.add(h)
	}
	host := ""
	if listen != "" {
		h, _, err := net.SplitHostPort(listen)
		if err != nil {
			return n, fmt.Errorf("listen address %q: %w (give HOST:PORT, e.g. 0.0.0.0:7443)", listen, err)
		}
		host = h
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return n, fmt.Errorf("list the host's addresses for the certificate: %w", err)
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLinkLocalUnicast() {
				n.add(p.Addr().String())
			}
		}
	} else {
		if err != nil && !validDNSName(host) {
			return n, fmt.Errorf("listen address %q: %q is neither an IP nor a DNS name", listen, host)
		}
		n.add(host)
	}
	for _, h := range extra {
		n.add(h)
	}
	return n, nil
}

func validDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// serverCertUsable reports whether leaf can stay: signed by ca, valid beyond the renewal
// window, and naming everything in want.
func serverCertUsable(leaf, ca *x509.Certificate, want certNames, now time.Time) bool {
	if leaf == nil || leaf.CheckSignatureFrom(ca) != nil {
		return false
	}
	if now.Before(leaf.NotBefore) || !now.Add(RenewBefore).Before(leaf.NotAfter) {
		return false
	}
	for _, d := range want.dns {
		if !slices.ContainsFunc(leaf.DNSNames, func(s string) bool { return strings.EqualFold(s, d) }) {
			return false
		}
	}
	for _, ip := range want.ips {
		if !slices.ContainsFunc(leaf.IPAddresses, func(have net.IP) bool {
			a, ok := netip.AddrFromSlice(have)
			return ok && a.Unmap() == ip
		}) {
			return false
		}
	}
	return true
}

// loadOrCreateCA reads ca.crt and ca.key, or creates both when neither exists.
func loadOrCreateCA(dir string, now time.Time, created *bool) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	if errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist) {
		cert, key, err := createCA(now)
		if err != nil {
			return nil, nil, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, fmt.Errorf("encode the CA key: %w", err)
		}
		if err := writePEM(keyPath, "PRIVATE KEY", keyDER); err != nil {
			return nil, nil, err
		}
		if err := writePEM(certPath, "CERTIFICATE", cert.Raw); err != nil {
			return nil, nil, err
		}
		*created = true
		return cert, key, nil
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("load the CA from %s: %w (restore %s and %s, or remove both to create a new CA that every client must then be given)",
			dir, err, CACertFile, CAKeyFile)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !pair.Leaf.IsCA {
		return nil, nil, fmt.Errorf("load the CA from %s: %s is not an ECDSA certificate authority (remove %s and %s to create a new one)",
			dir, CACertFile, CACertFile, CAKeyFile)
	}
	if !now.Before(pair.Leaf.NotAfter) {
		return nil, nil, fmt.Errorf("the CA in %s expired on %s (remove %s and %s to create a new one, then give clients the new %s)",
			dir, pair.Leaf.NotAfter.Format(time.DateOnly), CACertFile, CAKeyFile, CACertFile)
	}
	return pair.Leaf, key, nil
}

func createCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate the CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	name := "strata CA"
	if h, err := os.Hostname(); err == nil {
		name += " " + h
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"strata"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CALifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse the new CA certificate: %w", err)
	}
	return cert, key, nil
}

func issueServerCert(ca *x509.Certificate, caKey *ecdsa.PrivateKey, names certNames, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate the server key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(ServerLifetime)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "strata daemon", Organization: []string{"strata"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names.dns,
	}
	for _, ip := range names.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign the server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse the new server certificate: %w", err)
	}
	return leaf, key, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("draw a certificate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // positive, never zero
}

// writePEM replaces path with one PEM block, readable by the daemon's user only; a crash
// leaves either the old file or the new one.
func writePEM(path, blockType string, der []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; cleans up after a failure
	err = pem.Encode(tmp, &pem.Block{Type: blockType, Bytes: der})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
