package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"

	"strata.dev/strata/internal/netseg"
)

// Port is where every segment's server listens.
const Port = 53

// Defaults for Options.
const (
	DefaultTTL            = 5 * time.Second
	DefaultForwardTimeout = 2 * time.Second
	DefaultResolvConf     = "/etc/resolv.conf"
)

// ErrClosed is what Serve returns after Close.
var ErrClosed = errors.New("dns server closed")

// Options configure a Server. The zero value serves in the daemon's own
// namespace and forwards to the host's resolvers.
type Options struct {
	// Host is the namespace that holds the segments' gateway addresses:
	// listeners are bound there and upstream queries leave from there.
	// Nil means netseg.RootHost().
	Host netseg.Host
	// Upstreams are the resolvers that other names are forwarded to, tried
	// in order. Nil means the nameservers of ResolvConf (see HostUpstreams),
	// read again whenever that file changes; an empty list means none, so
	// that forwarded queries get SERVFAIL.
	Upstreams []netip.AddrPort
	// ResolvConf is the file the upstreams are read from when Upstreams is
	// nil; DefaultResolvConf if empty.
	ResolvConf string
	// Logger receives the server's records; nil discards them.
	Logger *slog.Logger
	// TTL of the answers for strata names, in whole seconds; DefaultTTL if
	// zero or less.
	TTL time.Duration
	// ForwardTimeout is how long one upstream has to answer before the
	// next is tried; DefaultForwardTimeout if zero or less.
	ForwardTimeout time.Duration
}

// Server answers DNS queries on the gateways of the segments it serves.
// Its methods are safe for concurrent use.
type Server struct {
	host       netseg.Host
	log        *slog.Logger
	ttl        uint32
	fwdTimeout time.Duration
	upstreams  *upstreamSource
	forwards   chan struct{} // a slot per forwarded query in flight
	table      atomic.Pointer[table]
	turn       atomic.Uint32 // rotates the order of answers

	mu     sync.Mutex
	closed bool
	segs   map[string]*listener
}

// maxForwards bounds the forwarded queries in flight at once, so that a
// flood from one instance cannot make the daemon open sockets without end.
const maxForwards = 256

// udpSize is the largest UDP message the server reads, and the payload
// size it announces in EDNS answers (the size DNS flag day 2020 settled on:
// no fragmentation on common paths).
const udpSize = 1232

// New returns a Server that serves no segment yet and knows no names.
func New(opts Options) *Server {
	s := &Server{
		host:       opts.Host,
		log:        opts.Logger,
		fwdTimeout: opts.ForwardTimeout,
		forwards:   make(chan struct{}, maxForwards),
		segs:       make(map[string]*listener),
	}
	if s.host == nil {
		s.host = netseg.RootHost()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	ttl := opts.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	s.ttl = uint32(ttl / time.Second)
	if s.fwdTimeout <= 0 {
		s.fwdTimeout = DefaultForwardTimeout
	}
	path := opts.ResolvConf
	if path == "" {
		path = DefaultResolvConf
	}
	s.upstreams = newUpstreamSource(opts.Upstreams, path, s.log)
	s.table.Store(&table{})
	return s
}

// listener is one segment's pair of servers.
type listener struct {
	segment string
	addr    netip.AddrPort
	udp     *mdns.Server
	tcp     *mdns.Server
	done    chan error    // each serve loop sends its result here when it ends
	cancel  func()        // cancels the forwarded queries in flight
	stopped chan struct{} // closed once both loops have ended
}

// Serve starts answering for segment on gateway:53, UDP and TCP, in the
// Host namespace. Serving a segment that is already served on that gateway
// does nothing; on another gateway, the listeners move there. The error
// names the address when it cannot be bound.
func (s *Server) Serve(segment string, gateway netip.Addr) error {
	if segment == "" || !gateway.IsValid() || gateway.IsUnspecified() {
		return fmt.Errorf("%w: DNS server needs a segment name and its gateway address (got %q, %v)",
			netseg.ErrInvalid, segment, gateway)
	}
	gateway = gateway.Unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("serve segment %s: %w", segment, ErrClosed)
	}
	addr := netip.AddrPortFrom(gateway, Port)
	old := s.segs[segment]
	if old != nil && old.addr == addr {
		return nil
	}
	l, err := s.listen(segment, addr)
	if err != nil {
		return err
	}
	s.segs[segment] = l
	if old != nil {
		s.shutdown(old)
	}
	s.log.Info("dns serving", "segment", segment, "address", addr)
	return nil
}

// Stop stops answering for segment; in-flight forwarded queries are
// abandoned. Stopping a segment that is not served does nothing.
func (s *Server) Stop(segment string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.segs[segment]
	if l == nil {
		return nil
	}
	delete(s.segs, segment)
	s.shutdown(l)
	return nil
}

// Close stops every segment's listeners; Serve fails afterwards.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for name, l := range s.segs {
		delete(s.segs, name)
		s.shutdown(l)
	}
	return nil
}

// Serving reports the address each served segment listens on.
func (s *Server) Serving() map[string]netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]netip.AddrPort, len(s.segs))
	for name, l := range s.segs {
		out[name] = l.addr
	}
	return out
}

// listen binds addr in the Host namespace and starts both serve loops.
func (s *Server) listen(segment string, addr netip.AddrPort) (*listener, error) {
	udpNet, tcpNet := "udp4", "tcp4"
	if addr.Addr().Is6() {
		udpNet, tcpNet = "udp6", "tcp6"
	}
	var (
		pc net.PacketConn
		ln net.Listener
	)
	err := s.host.Do(func() error {
		var err error
		if pc, err = net.ListenPacket(udpNet, addr.String()); err != nil {
			return err
		}
		if ln, err = net.Listen(tcpNet, addr.String()); err != nil {
			pc.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, bindError(segment, addr, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	h := &handler{s: s, segment: strings.ToLower(segment), ctx: ctx}
	l := &listener{
		segment: segment,
		addr:    addr,
		done:    make(chan error, 2),
		cancel:  cancel,
		stopped: make(chan struct{}),
	}
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	l.udp = &mdns.Server{PacketConn: pc, Handler: h, UDPSize: udpSize, NotifyStartedFunc: notify}
	l.tcp = &mdns.Server{Listener: ln, Handler: h, NotifyStartedFunc: notify}
	for _, srv := range []*mdns.Server{l.udp, l.tcp} {
		go func() { l.done <- srv.ActivateAndServe() }()
	}
	for range 2 {
		select {
		case <-started:
		case err := <-l.done:
			// A loop that ends before it starts has closed nothing.
			cancel()
			_ = l.udp.Shutdown()
			_ = l.tcp.Shutdown()
			pc.Close()
			ln.Close()
			return nil, fmt.Errorf("segment %s: DNS server on %s did not start: %w", segment, addr, err)
		}
	}
	go l.watch(s.log)
	return l, nil
}

// bindError explains why addr could not be bound.
func bindError(segment string, addr netip.AddrPort, err error) error {
	hint := ""
	switch {
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = ": no interface of the host namespace has that address; create the segment's bridge with its gateway first"
	case errors.Is(err, syscall.EADDRINUSE):
		hint = ": another server already listens there; stop it or give the segment another subnet"
	case errors.Is(err, syscall.EACCES):
		hint = ": port 53 needs root or CAP_NET_BIND_SERVICE"
	}
	return fmt.Errorf("segment %s: DNS server cannot listen on %s: %w%s", segment, addr, err, hint)
}

// watch waits for both serve loops to end, logs a loop that ended by
// itself, and then marks the listener stopped.
func (l *listener) watch(log *slog.Logger) {
	for range 2 {
		if err := <-l.done; err != nil {
			log.Error("dns server stopped", "segment", l.segment, "address", l.addr, "err", err)
		}
	}
	close(l.stopped)
}

// shutdown stops l's loops and waits for them and for the queries they
// are answering.
func (s *Server) shutdown(l *listener) {
	l.cancel()
	// Shutdown fails only for a loop that has already ended, which watch
	// has logged.
	_ = l.udp.Shutdown()
	_ = l.tcp.Shutdown()
	<-l.stopped
	s.log.Info("dns stopped", "segment", l.segment, "address", l.addr)
}
