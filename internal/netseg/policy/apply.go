package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// elemsPerMessage bounds the elements sent in one netlink message: a
// message's element list is one netlink attribute, whose length field has
// 16 bits.
const elemsPerMessage = 512

// Apply replaces table inet strata with r in one netlink batch: add the
// table (which does nothing if it exists), delete it with everything in
// it, and add it again with all of r's sets, elements, chains and rules.
// The kernel applies a batch whole or not at all, so packets meet either
// the previous ruleset or r, never a mix or an empty table, and a batch
// the kernel refuses leaves the previous ruleset in force.
//
// The whole batch travels in one sendmsg, so it must fit the send buffer
// of c's netlink socket. The default buffer (212,992 bytes) holds about
// 2,000 allowed flows; make c with LargeBatches and it holds any ruleset.
// c should carry no other buffered messages: they would go in the same
// batch.
func (r *Ruleset) Apply(c *nftables.Conn) error {
	// Refuse what nftables would refuse halfway through queueing the
	// batch, which would leave c holding the first half.
	for _, st := range r.sets {
		if st.s.Anonymous {
			return fmt.Errorf("replace table inet %s: set %s is anonymous; only named sets can be applied", Table, st.s.Name)
		}
	}
	t := r.table
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	for _, st := range r.sets {
		if err := c.AddSet(st.s, nil); err != nil {
			return fmt.Errorf("replace table inet %s: set %s: %w", Table, st.s.Name, err)
		}
		for chunk := range slices.Chunk(st.elems, elemsPerMessage) {
			if err := c.SetAddElements(st.s, chunk); err != nil {
				return fmt.Errorf("replace table inet %s: elements of set %s: %w", Table, st.s.Name, err)
			}
		}
	}
	for _, ch := range r.chains {
		c.AddChain(ch.c)
	}
	for _, ch := range r.chains {
		for _, rule := range ch.rules {
			c.AddRule(rule)
		}
	}
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.EMSGSIZE) {
			return fmt.Errorf("replace table inet %s (the previous ruleset stays in force): the batch is larger than the netlink socket's send buffer; make the connection with policy.LargeBatches(): %w", Table, err)
		}
		return fmt.Errorf("replace table inet %s (the previous ruleset stays in force): %w", Table, err)
	}
	return nil
}

// Socket buffer sizes that LargeBatches sets. The kernel charges only what
// is queued, so a large limit costs nothing while idle. 64 MiB holds about
// a million allowed flows.
const (
	sendBuffer    = 64 << 20
	receiveBuffer = 4 << 20
)

// LargeBatches is an option for nftables.New that lifts the connection's
// socket buffers beyond the system's limits (SO_SNDBUFFORCE and
// SO_RCVBUFFORCE, which need CAP_NET_ADMIN, as nftables itself does), so
// that Apply can send a ruleset of any size in its one batch, as the nft
// command does.
func LargeBatches() nftables.ConnOption {
	return nftables.WithSockOptions(forceBuffers)
}

// forceBuffers sets the socket buffers of a netlink connection. It is
// generic only so that the connection's type need not be named: it is
// instantiated with the type nftables.SockOption takes.
func forceBuffers[C interface {
	SyscallConn() (syscall.RawConn, error)
}](c C) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = errors.Join(
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendBuffer),
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, receiveBuffer),
		)
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("enlarge netlink socket buffers: %w", err)
	}
	return nil
}

// Remove deletes table inet strata, if it exists, in one batch (add the
// table, which does nothing if it exists, then delete it). Nothing else is
// touched: not other tables, not a table named strata of another family.
func Remove(c *nftables.Conn) error {
	t := &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete table inet %s: %w", Table, err)
	}
	return nil
}

// Current reads table inet strata back from the kernel: its sets with
// their elements and its chains with their rules, as a Ruleset whose
// Digest is the one Apply recorded. It returns nil and no error when the
// table does not exist. The reads are separate requests, so a table
// replaced meanwhile can give a mix of the two.
func Current(c *nftables.Conn) (*Ruleset, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: %w", err)
	}
	var t *nftables.Table
	for _, tt := range tables {
		if tt.Name == Table {
			t = tt
		}
	}
	if t == nil {
		return nil, nil
	}
	r := &Ruleset{table: &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}}
	sets, err := c.GetSets(r.table)
	if err != nil {
		return nil, fmt.Errorf("list sets of table inet %s: %w", Table, err)
	}
	for _, s := range sets {
		elems, err := c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("list elements of set %s in table inet %s: %w", s.Name, Table, err)
		}
		r.sets = append(r.sets, &set{s: s, elems: elems})
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list nftables chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != Table {
			continue
		}
		ch.Table = r.table
		rules, err := c.GetRules(r.table, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of chain %s in table inet %s: %w", ch.Name, Table, err)
		}
		r.chains = append(r.chains, &chain{c: ch, rules: rules})
	}
	if fwd := r.chain(chainForward); fwd != nil && len(fwd.rules) > 0 {
		if _, d, ok := strings.Cut(ruleComment(fwd.rules[0]), digestMark); ok {
			r.digest = d
		}
	}
	return r, nil
}
