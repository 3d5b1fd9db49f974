package dns

import (
	"context"
	"net"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// handler answers the queries that reach one segment's listeners.
type handler struct {
	s       *Server
	segment string
	ctx     context.Context // canceled when the listeners stop
}

// ServeDNS implements mdns.Handler.
func (h *handler) ServeDNS(w mdns.ResponseWriter, r *mdns.Msg) {
	_, tcp := w.LocalAddr().(*net.TCPAddr)
	resp := h.s.reply(h.ctx, h.segment, r, tcp)
	fit(resp, r, tcp)
	_ = w.WriteMsg(resp) // the client went away: nothing to do
}

// reply builds the answer to r, which came from segment.
func (s *Server) reply(ctx context.Context, segment string, r *mdns.Msg, tcp bool) *mdns.Msg {
	switch {
	case r.Opcode != mdns.OpcodeQuery:
		return rcode(r, mdns.RcodeNotImplemented)
	case len(r.Question) != 1:
		return rcode(r, mdns.RcodeFormatError)
	}
	t := s.table.Load()
	q := r.Question[0]
	n, ok := strataName(t, segment, q.Name)
	if !ok {
		if !t.egress[segment] {
			return rcode(r, mdns.RcodeRefused)
		}
		return s.forward(ctx, r, tcp)
	}
	if q.Qclass != mdns.ClassINET && q.Qclass != mdns.ClassANY {
		return rcode(r, mdns.RcodeRefused) // strata names exist in class IN only
	}
	resp := new(mdns.Msg)
	resp.SetReply(r)
	resp.Authoritative = true
	resp.RecursionAvailable = t.egress[segment]
	addrs, found := t.lookup(n.segment, n.name)
	if !found {
		if n.oneLabel && (n.name == segment || t.knows(n.name)) {
			return resp // a segment itself exists, without records
		}
		resp.Rcode = mdns.RcodeNameError
		return resp
	}
	resp.Answer = s.records(q, addrs)
	return resp
}

// target is a strata name taken apart.
type target struct {
	segment  string // where to look it up
	name     string // what to look up, in lower case
	oneLabel bool   // the query named no segment
}

// strataName takes qname apart, or reports that it is not a strata name.
// One label is a name in the asking segment; two labels whose second is a
// known segment are a name in that segment.
func strataName(t *table, asking, qname string) (target, bool) {
	qname = strings.ToLower(strings.TrimSuffix(qname, "."))
	if qname == "" || strings.ContainsRune(qname, '\\') {
		return target{}, false // the root, or escapes that no strata name has
	}
	first, rest, two := strings.Cut(qname, ".")
	switch {
	case !two:
		return target{segment: asking, name: first, oneLabel: true}, true
	case first != "" && !strings.Contains(rest, ".") && (rest == asking || t.knows(rest)):
		return target{segment: rest, name: first}, true
	}
	return target{}, false
}

// records are the answers to q from addrs: A records for A, AAAA records
// for AAAA, both for ANY, none for other types. The order rotates from one
// query to the next, so that clients that take the first address spread
// over the instances.
func (s *Server) records(q mdns.Question, addrs []netip.Addr) []mdns.RR {
	var out []mdns.RR
	n := len(addrs)
	if n == 0 {
		return nil
	}
	start := int(s.turn.Add(1) % uint32(n))
	for i := range n {
		a := addrs[(start+i)%n]
		hdr := mdns.RR_Header{Name: q.Name, Class: mdns.ClassINET, Ttl: s.ttl}
		switch {
		case a.Is4() && (q.Qtype == mdns.TypeA || q.Qtype == mdns.TypeANY):
			hdr.Rrtype = mdns.TypeA
			out = append(out, &mdns.A{Hdr: hdr, A: a.AsSlice()})
		case a.Is6() && (q.Qtype == mdns.TypeAAAA || q.Qtype == mdns.TypeANY):
			hdr.Rrtype = mdns.TypeAAAA
			out = append(out, &mdns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	return out
}

// rcode is an empty reply to r with the given response code.
func rcode(r *mdns.Msg, code int) *mdns.Msg {
	resp := new(mdns.Msg)
	resp.SetRcode(r, code)
	return resp
}

// fit makes resp fit what the client can take: over UDP, the payload size
// its EDNS record announces (512 bytes without one), cutting records and
// setting the truncated flag so that it asks again over TCP. A client
// that sent an EDNS record gets one back.
func fit(resp, r *mdns.Msg, tcp bool) {
	size := mdns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), mdns.MinMsgSize)
		if resp.IsEdns0() == nil {
			resp.SetEdns0(udpSize, false)
		}
	}
	if tcp {
		size = mdns.MaxMsgSize
	}
	resp.Truncate(size)
}
