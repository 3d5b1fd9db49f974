package dns

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// forward asks the upstream resolvers, in order, and returns the first
// answer that is not SERVFAIL or REFUSED (or the last such answer if all
// give one); SERVFAIL when none answers.
func (s *Server) forward(ctx context.Context, r *mdns.Msg, tcp bool) *mdns.Msg {
	select {
	case s.forwards <- struct{}{}:
		defer func() { <-s.forwards }()
	default:
		s.log.Debug("dns forward dropped", "reason", "too many in flight", "limit", maxForwards)
		return rcode(r, mdns.RcodeServerFailure)
	}
	var last *mdns.Msg
	for _, up := range s.upstreams.get() {
		resp, err := s.exchange(ctx, up, r, tcp)
		if err != nil {
			s.log.Debug("dns upstream failed", "upstream", up, "name", r.Question[0].Name, "err", err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		resp.Id = r.Id
		if resp.Rcode != mdns.RcodeServerFailure && resp.Rcode != mdns.RcodeRefused {
			return resp
		}
		last = resp
	}
	if last != nil {
		return last
	}
	return rcode(r, mdns.RcodeServerFailure)
}

// exchange sends r to up over the transport the client used and waits for
// the answer at most the forward timeout. The socket is made in the Host
// namespace, where the upstreams are reachable.
func (s *Server) exchange(ctx context.Context, up netip.AddrPort, r *mdns.Msg, tcp bool) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, s.fwdTimeout)
	defer cancel()
	network := "udp"
	if tcp {
		network = "tcp"
	}
	var c net.Conn
	err := s.host.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, up.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	client := mdns.Client{Net: network}
	resp, _, err := client.ExchangeWithConnContext(ctx, r, &mdns.Conn{Conn: c})
	return resp, err
}

// upstreamSource gives the upstream resolvers: the fixed list, or those of
// a resolv.conf file, read again when the file changes.
type upstreamSource struct {
	fixed []netip.AddrPort
	path  string
	log   *slog.Logger

	mu     sync.Mutex
	loaded bool
	mtime  time.Time
	size   int64
	list   []netip.AddrPort
	failed bool // the last read failed (logged once until a read works)
}

func newUpstreamSource(fixed []netip.AddrPort, path string, log *slog.Logger) *upstreamSource {
	return &upstreamSource{fixed: slices.Clone(fixed), path: path, log: log}
}

// get returns the upstreams to try, in order. When the file cannot be read
// it keeps the last list it read.
func (u *upstreamSource) get() []netip.AddrPort {
	if u.fixed != nil {
		return u.fixed
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	fi, err := os.Stat(u.path)
	if err == nil && u.loaded && fi.ModTime().Equal(u.mtime) && fi.Size() == u.size {
		return u.list
	}
	var list []netip.AddrPort
	if err == nil {
		list, err = HostUpstreams(u.path)
	}
	if err != nil {
		if !u.failed {
			u.log.Warn("dns upstreams unreadable, keeping the last ones", "file", u.path, "err", err, "upstreams", u.list)
			u.failed = true
		}
		return u.list
	}
	u.loaded, u.failed = true, false
	u.mtime, u.size = fi.ModTime(), fi.Size()
	if !slices.Equal(list, u.list) {
		u.log.Info("dns upstreams", "file", u.path, "upstreams", list)
	}
	u.list = list
	return list
}
