package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
)

// unixClient is an HTTP client of the unix socket sock.
func unixClient(sock string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}

// healthy reports whether GET /healthz on the unix socket answers ok.
func healthy(sock string) error {
	c := unixClient(sock)
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://strata/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

func (ts *tlsServer) addr() string { return strings.TrimPrefix(ts.url, "https://") }

// dialFrom opens a TLS connection to ts from the local address ip (any of 127.0.0.0/8).
func (ts *tlsServer) dialFrom(ip string) (*tls.Conn, error) {
	pool := x509.NewCertPool()
	pool.AddCert(ts.mat.CA)
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := tls.DialWithDialer(d, "tcp", ts.addr(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c, nil
}

// roundTrip sends one GET path on c with the token (none when "") and reads the answer.
// reply is what a test reads of a response: roundTrip has read and closed its body.
type reply struct {
	StatusCode int
	Close      bool
}

func roundTrip(c net.Conn, br *bufio.Reader, path, token string) (*reply, error) {
	req := "GET " + path + " HTTP/1.1\r\nHost: strata\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return &reply{StatusCode: resp.StatusCode, Close: resp.Close}, err
}

// closedByServer waits up to 5s for the server to close c: true when a read ends with
// EOF (or a reset), false when it is still open.
func closedByServer(c net.Conn, br *bufio.Reader) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := br.ReadByte()
	var ne net.Error
	return err != nil && (!errors.As(err, &ne) || !ne.Timeout())
}

// A 401 ends the connection: a client without a token cannot keep a file of the daemon's.
func TestUnauthorizedClosesTheConnection(t *testing.T) {
	ts := startTLS(t)
	for _, token := range []string{"", strings.Repeat("0", 64)} {
		c, err := ts.dialFrom("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := roundTrip(c, br, Prefix+"workloads", token)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
			t.Errorf("token %q: %d, Connection: close %v; want 401 that closes", token, resp.StatusCode, resp.Close)
		}
		if !closedByServer(c, br) {
			t.Errorf("token %q: the connection stays open after the 401", token)
		}
		_ = c.Close()
	}
}

// A kept-alive connection that sends nothing more is closed after IdleTimeout.
func TestIdleConnectionsAreClosed(t *testing.T) {
	ts := startTLSWith(t, Limits{IdleTimeout: 200 * time.Millisecond})
	c, err := ts.dialFrom("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	resp, err := roundTrip(c, br, "/healthz", ts.admin)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /healthz: %v %v", resp, err)
	}
	if !closedByServer(c, br) {
		t.Error("an idle connection is still open after 5s")
	}
}

// The body of an ordinary request must arrive within RequestTimeout; a client that
// stops sending it loses its connection, on the unix socket too.
func TestSlowBodyIsCut(t *testing.T) {
	ts := startTLSWith(t, Limits{RequestTimeout: 300 * time.Millisecond})
	c, err := net.Dial("unix", ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST "+Prefix+"workloads HTTP/1.1\r\nHost: strata\r\nContent-Length: 1000\r\n\r\n{\"apiVersion\":"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a stalled body got %s, want 400", resp.Status)
		}
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Error("the server still waits for the body after 5s")
	}
}

// Watches outlive RequestTimeout: they end when the client goes away, not before.
func TestWatchOutlivesRequestTimeout(t *testing.T) {
	ts := startTLSWith(t, Limits{RequestTimeout: 200 * time.Millisecond})
	cl := unixClient(ts.sock)
	cl.Timeout = 0
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://strata"+Prefix+"workloads?watch=true", nil)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(time.Second) // five request timeouts
	rec, err := objects.Record(v1alpha1.KindWorkload, v1alpha1.ObjectMeta{Name: "late"}, v1alpha1.WorkloadSpec{Image: "x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.st.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"late"`) {
		t.Fatalf("watch after 1s: %q, %v", line, err)
	}
}

// One client holds at most MaxConnsPerClient connections and all together at most
// MaxConns; the rest are closed at once. Others, and the unix socket, are served meanwhile,
// and a closed connection frees its place.
func TestConnectionCaps(t *testing.T) {
	ts := startTLSWith(t, Limits{MaxConns: 4, MaxConnsPerClient: 2})
	served := func(ip string) (*tls.Conn, error) {
		c, err := ts.dialFrom(ip)
		if err != nil {
			return nil, err
		}
		resp, err := roundTrip(c, bufio.NewReader(c), "/healthz", ts.admin)
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			_ = c.Close()
			return nil, fmt.Errorf("status %d", resp.StatusCode)
		}
		return c, nil
	}
	var held []*tls.Conn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	for _, step := range []struct {
		ip     string
		served bool
	}{
		{"127.0.0.1", true}, {"127.0.0.1", true}, {"127.0.0.1", false}, // the client's cap
		{"127.0.0.2", true}, {"127.0.0.2", true}, // another client
		{"127.0.0.3", false}, // the listener's cap
	} {
		c, err := served(step.ip)
		if (err == nil) != step.served {
			t.Fatalf("connection %d from %s: error %v, want served %v", len(held)+1, step.ip, err, step.served)
		}
		if c != nil {
			held = append(held, c)
		}
		if err := healthy(ts.sock); err != nil {
			t.Fatalf("the unix socket while the TLS listener holds %d connections: %v", len(held), err)
		}
	}
	_ = held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := served("127.0.0.1")
		if err == nil {
			held = append(held, c)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed connection's place is not given back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(ts.logs.String(), "level=WARN msg=\"connection refused"); n != 1 {
		t.Errorf("%d WARN lines about refused connections, want 1 (the rest summed up later):\n%s", n, ts.logs)
	}
}

// Refused requests are logged at a bounded rate: a flood of them gives one WARN line, and
// one summary per reason when the interval ends.
func TestRefusalsAreLoggedAtABoundedRate(t *testing.T) {
	ts := startTLS(t)
	for i := range 50 {
		path := Prefix + "workloads"
		if i == 0 {
			path += "/" + strings.Repeat("a", 4000) // the logged one: clipped
		}
		if code, _, _ := ts.get(t, path, ""); code != http.StatusUnauthorized {
			t.Fatalf("code %d", code)
		}
	}
	logged := 0
	for line := range strings.Lines(ts.logs.String()) {
		if strings.Contains(line, "refused") && !strings.Contains(line, "level=DEBUG") {
			logged++
			if len(line) > 1000 {
				t.Errorf("a refusal's log line is %d bytes long", len(line))
			}
		}
	}
	if logged != 1 {
		t.Errorf("50 refused requests gave %d log lines above DEBUG, want 1:\n%s", logged, ts.logs)
	}

	clock := &manualClock{now: time.Now()}
	var buf syncWriter
	var out strings.Builder
	buf.w = &out
	r := newRefusals(slog.New(slog.NewTextHandler(&buf, nil)), time.Minute)
	r.now = clock.Now
	var pending []func()
	r.after = func(_ time.Duration, f func()) { pending = append(pending, f) }
	for i := range 1000 {
		r.note("request without a token refused", "remote", "10.0.0.1:"+strconv.Itoa(i))
	}
	r.note("request with an unknown token refused", "remote", "10.0.0.2:1")
	clock.Advance(time.Minute)
	for _, f := range pending {
		f()
	}
	got := out.String()
	if n := strings.Count(got, "\n"); n != 3 {
		t.Errorf("%d lines, want 3 (the first refusal, one summary per reason):\n%s", n, got)
	}
	if !strings.Contains(got, "count=999") || !strings.Contains(got, "count=1 ") {
		t.Errorf("the summaries lack their counts:\n%s", got)
	}
}

// floodEnv makes the test binary a flood helper: it opens that many TCP connections to
// $STRATA_TEST_FLOOD_ADDR, says "ready", and holds them until its stdin closes.
const floodEnv = "STRATA_TEST_FLOOD"

// TestMain runs the test binary as a flood helper when floodEnv asks for one, and
// as the package's tests otherwise.
func TestMain(m *testing.M) {
	if n, _ := strconv.Atoi(os.Getenv(floodEnv)); n > 0 {
		flood(n, os.Getenv(floodEnv+"_ADDR"))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// flood opens n TCP connections to addr, says "ready N" on stdout, and holds them until
// its stdin closes.
func flood(n int, addr string) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	var conns []net.Conn
	for range n {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			conns = append(conns, c)
		}
	}
	fmt.Printf("ready %d\n", len(conns))
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		_ = c.Close()
	}
}

// openFiles counts this process's open files.
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("cannot count open files: %v", err)
	}
	if err != nil {
		t.Fatalf("count open files: %v", err)
	}
	return len(ents)
}

// The key property: however many connections the TLS port is sent, the daemon keeps
// files for the unix socket, which goes on answering. The daemon's open-file limit is
// lowered to 256 for the test, and another process opens 600 connections to the port.
func TestUnixSocketAnswersWhileTLSIsFlooded(t *testing.T) {
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	low := orig
	low.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) })

	ts := startTLS(t) // default caps, from the lowered limit: 64 connections
	before := openFiles(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), floodEnv+"=600", floodEnv+"_ADDR="+ts.addr())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	ready, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("flood helper: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // let the server accept what it will
	if err := healthy(ts.sock); err != nil {
		t.Fatalf("the unix socket while the TLS port is flooded: %v", err)
	}
	during := openFiles(t)
	t.Logf("flood helper: %s; open files of the daemon's process: %d before, %d during", strings.TrimSpace(ready), before, during)
	if during-before > 256/4+8 {
		t.Errorf("the flood holds %d files of the daemon's, want at most its cap of %d (+8)", during-before, 256/4)
	}
}
