package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Limits bound what the API's clients can hold of the daemon. The connection caps apply
// to the TCP listener only: the unix socket is for the host's root, and must go on
// answering while the TCP port is flooded. The timeouts apply to both.
type Limits struct {
	// MaxConns caps the TCP listener's open connections, all clients together. Zero: 512,
	// or a quarter of the process's open-file limit when that is lower, so that a flood of
	// the port leaves files for the socket, the store, logs and runtimes.
	MaxConns int
	// MaxConnsPerClient caps the open connections of one client: one IPv4 address, or
	// one IPv6 /64 (what one machine is usually given). Zero: 32.
	MaxConnsPerClient int
	// ReadHeaderTimeout bounds the TLS handshake and the reading of a request's header.
	// Zero: 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a kept-alive connection that sends no new request. Zero: 60s.
	IdleTimeout time.Duration
	// RequestTimeout bounds the reading of a request's body and the writing of its answer,
	// for every route but the long-lived ones: watches, logs, exec, image import, store
	// backup downloads, snapshots and backups, which run as long as they need and end when
	// the client goes away. Zero: 60s.
	RequestTimeout time.Duration
	// RefusalLogInterval is how often refused requests and connections are logged: the first
	// of an interval at WARN, the others counted into one summary line. Zero: 1 minute.
	RefusalLogInterval time.Duration
}

// Defaults of Limits.
const (
	DefaultMaxConns           = 512
	DefaultMaxConnsPerClient  = 32
	DefaultReadHeaderTimeout  = 10 * time.Second
	DefaultIdleTimeout        = 60 * time.Second
	DefaultRequestTimeout     = 60 * time.Second
	DefaultRefusalLogInterval = time.Minute
)

// withDefaults fills in the zero fields of l.
func (l Limits) withDefaults() Limits {
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
		var rl syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur > 0 && rl.Cur/4 < uint64(l.MaxConns) {
			l.MaxConns = max(int(rl.Cur/4), 1)
		}
	}
	if l.MaxConnsPerClient <= 0 {
		l.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.RequestTimeout <= 0 {
		l.RequestTimeout = DefaultRequestTimeout
	}
	if l.RefusalLogInterval <= 0 {
		l.RefusalLogInterval = DefaultRefusalLogInterval
	}
	return l
}

// capListener accepts at most max connections at once, and at most perClient from one
// client; a connection over either cap is closed as soon as it is accepted, before any
// TLS handshake, so it costs a file only for that instant.
type capListener struct {
	net.Listener
	max, perClient int
	refused        *refusals

	mu       sync.Mutex
	open     int
	byClient map[netip.Prefix]int
}

func newCapListener(l net.Listener, lim Limits, refused *refusals) *capListener {
	return &capListener{Listener: l, max: lim.MaxConns, perClient: lim.MaxConnsPerClient, refused: refused, byClient: map[netip.Prefix]int{}}
}

// clientOf is the client a remote address counts against: its IPv4 address or its
// IPv6 /64.
func clientOf(a net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{} // not TCP: all such connections count as one client
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// Accept returns the next connection within the caps.
func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := clientOf(c.RemoteAddr())
		if why := l.take(client); why != "" {
			l.refused.note(why, "remote", c.RemoteAddr().String())
			_ = c.Close()
			continue
		}
		return &cappedConn{Conn: c, release: func() { l.release(client) }}, nil
	}
}

// take counts a new connection of client, or says which cap it would exceed.
func (l *capListener) take(client netip.Prefix) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.max:
		return fmt.Sprintf("connection refused: the listener holds its cap of %d connections", l.max)
	case l.byClient[client] >= l.perClient:
		return fmt.Sprintf("connection refused: the client holds its cap of %d connections", l.perClient)
	}
	l.open++
	l.byClient[client]++
	return ""
}

func (l *capListener) release(client netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byClient[client]--; l.byClient[client] <= 0 {
		delete(l.byClient, client)
	}
}

// cappedConn gives its place back when closed, once.
type cappedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// refusals logs refused requests and connections at a bounded rate, since anyone who can
// reach the port can make them: the first of each interval at WARN with its details, the
// rest only at DEBUG, counted, and summed up in one WARN line (per reason) once the
// interval ends.
type refusals struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time
	// after runs f after d (time.AfterFunc; tests replace it).
	after func(d time.Duration, f func())

	mu      sync.Mutex
	start   time.Time      // of the current interval; zero: none open
	counted map[string]int // refusals not logged at WARN in the current interval, by reason
	last    string         // remote of the latest of them
}

func newRefusals(log *slog.Logger, every time.Duration) *refusals {
	return &refusals{log: log, every: every, now: time.Now, counted: map[string]int{},
		after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

// note records one refusal; attrs say what was refused (method, path, remote).
func (r *refusals) note(reason string, attrs ...any) {
	r.log.Debug(reason, attrs...)
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if !r.start.IsZero() && now.Sub(r.start) < r.every {
		r.counted[reason]++
		for i := 0; i+1 < len(attrs); i += 2 {
			if attrs[i] == "remote" {
				r.last, _ = attrs[i+1].(string)
			}
		}
		return
	}
	r.flushLocked()
	r.start = now
	r.log.Warn(reason, append(attrs, "hint", fmt.Sprintf("further refusals within %s are summed up in one line", r.every))...)
	start := now
	r.after(r.every, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.start.Equal(start) {
			r.flushLocked()
		}
	})
}

// flushLocked logs the summary of the current interval and closes it; callers hold r.mu.
func (r *refusals) flushLocked() {
	for reason, n := range r.counted {
		r.log.Warn("refusals summed up", "reason", reason, "count", n, "since", r.start.UTC().Format(time.RFC3339), "lastRemote", r.last)
	}
	clear(r.counted)
	r.start, r.last = time.Time{}, ""
}

// bounded sets the read and write deadlines of an ordinary request: its body must arrive,
// and its answer be taken, within timeout. Long-lived handlers lift them (longLived).
func bounded(next http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		deadline := time.Now().Add(timeout)
		_ = rc.SetReadDeadline(deadline) // not supported (a recorder in tests): nothing to bound
		_ = rc.SetWriteDeadline(deadline)
		next.ServeHTTP(w, r)
	})
}

// longLived lifts the deadlines bounded set, for a handler that streams or waits for as
// long as its client wants (a watch, a followed log, exec, a download, an upload). It ends
// when the client goes away: the request's context is cancelled then.
func longLived(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
}
