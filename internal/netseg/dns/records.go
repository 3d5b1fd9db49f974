package dns

import (
	"net/netip"
	"strings"
)

// Records is the table the server answers from.
type Records struct {
	// Names maps a segment to its names (workload names and instance
	// IDs) and each name to its addresses. List every segment, even one
	// without names, so that "NAME.SEGMENT" is a strata name for it.
	Names map[string]map[string][]netip.Addr
	// Egress holds the segments whose instances may reach outside: their
	// queries for other names are forwarded upstream. Any other segment
	// gets REFUSED for them.
	Egress map[string]bool
}

// table is the server's private copy of Records, with names in lower case.
// It is never changed once stored, so readers need no lock.
type table struct {
	names  map[string]map[string][]netip.Addr
	egress map[string]bool
}

// Set replaces the table the server answers from. It copies r, so the
// caller may change r afterwards; a query sees either the old table or the
// new one, never a mix.
func (s *Server) Set(r Records) {
	s.table.Store(newTable(r))
}

func newTable(r Records) *table {
	t := &table{
		names:  make(map[string]map[string][]netip.Addr, len(r.Names)),
		egress: make(map[string]bool, len(r.Egress)),
	}
	for seg, names := range r.Names {
		seg = strings.ToLower(seg)
		m := t.names[seg]
		if m == nil {
			m = make(map[string][]netip.Addr, len(names))
			t.names[seg] = m
		}
		for name, addrs := range names {
			name = strings.ToLower(name)
			for _, a := range addrs {
				if a.IsValid() {
					m[name] = append(m[name], a.Unmap())
				}
			}
			if _, ok := m[name]; !ok {
				m[name] = nil // a name without addresses still exists
			}
		}
	}
	for seg, ok := range r.Egress {
		t.egress[strings.ToLower(seg)] = ok
	}
	return t
}

// knows reports whether seg is a segment of the table.
func (t *table) knows(seg string) bool {
	if _, ok := t.names[seg]; ok {
		return true
	}
	_, ok := t.egress[seg]
	return ok
}

// lookup returns the addresses of name in seg and whether the name exists.
func (t *table) lookup(seg, name string) ([]netip.Addr, bool) {
	addrs, ok := t.names[seg][name]
	return addrs, ok
}
