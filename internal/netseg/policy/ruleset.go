package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Ruleset is the content of table inet strata: its sets and maps with
// their elements, and its chains with their rules, as google/nftables
// values. Compile makes one; Current reads one back from the kernel. A
// Ruleset is not changed after it is made, so it may be applied any number
// of times, from any goroutine.
type Ruleset struct {
	table  *nftables.Table
	sets   []*set   // in the order they are added
	chains []*chain // in the order they are added
	digest string
}

type set struct {
	s     *nftables.Set
	elems []nftables.SetElement
}

type chain struct {
	c     *nftables.Chain
	rules []*nftables.Rule
}

// Digest identifies the compiled ruleset: "sha256:" and 64 hex digits of a
// hash over every set, element, chain and rule. Apply records it in the
// comment of the forward chain's first rule, so Current reports the Digest
// of the ruleset that was applied last, or "" for a table that strata did
// not write.
func (r *Ruleset) Digest() string { return r.digest }

// Summary counts what a ruleset holds.
type Summary struct {
	// Chains maps each chain's name to its number of rules.
	Chains map[string]int
	// Sets maps each set's or map's name to its number of elements
	// (interval sets count start and end elements).
	Sets map[string]int
}

// Summary counts r's rules per chain and elements per set.
func (r *Ruleset) Summary() Summary {
	s := Summary{Chains: make(map[string]int, len(r.chains)), Sets: make(map[string]int, len(r.sets))}
	for _, c := range r.chains {
		s.Chains[c.c.Name] = len(c.rules)
	}
	for _, st := range r.sets {
		s.Sets[st.s.Name] = len(st.elems)
	}
	return s
}

// String lists the counts in name order: "chains forward=10 input=3 ...;
// sets allow_all=2 ...".
func (s Summary) String() string {
	var b strings.Builder
	b.WriteString("chains")
	for _, name := range slices.Sorted(maps.Keys(s.Chains)) {
		fmt.Fprintf(&b, " %s=%d", name, s.Chains[name])
	}
	b.WriteString("; sets")
	for _, name := range slices.Sorted(maps.Keys(s.Sets)) {
		fmt.Fprintf(&b, " %s=%d", name, s.Sets[name])
	}
	return b.String()
}

// digestMark introduces the Digest in the first forward rule's comment.
const digestMark = "; ruleset "

// seal computes the Digest and records it in the first rule of the
// forward chain.
func (r *Ruleset) seal() error {
	h := sha256.New()
	fam := byte(r.table.Family)
	for _, st := range r.sets {
		s := st.s
		writeField(h, []byte(s.Name), []byte(s.KeyType.Name), []byte(s.DataType.Name),
			binary.BigEndian.AppendUint32(nil, s.KeyType.Bytes), binary.BigEndian.AppendUint32(nil, s.DataType.Bytes),
			[]byte(fmt.Sprint(s.IsMap, s.Interval, s.Concatenation, s.ID)))
		for _, e := range st.elems {
			end := []byte{0}
			if e.IntervalEnd {
				end[0] = 1
			}
			writeField(h, e.Key, e.KeyEnd, e.Val, end)
		}
	}
	for _, c := range r.chains {
		ch := c.c
		writeField(h, []byte(ch.Name), []byte(ch.Type),
			[]byte(fmt.Sprint(*ch.Hooknum, *ch.Priority, *ch.Policy)))
		for _, rule := range c.rules {
			writeField(h, rule.UserData)
			for _, e := range rule.Exprs {
				b, err := expr.Marshal(fam, e)
				if err != nil {
					return fmt.Errorf("encode rule %q of chain %s: %w", ruleComment(rule), ch.Name, err)
				}
				writeField(h, b)
			}
		}
	}
	r.digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	first := r.chain(chainForward).rules[0]
	first.UserData = comment(ruleComment(first) + digestMark + r.digest)
	return nil
}

// writeField hashes each field with its length, so fields cannot run into
// each other.
func writeField(h hash.Hash, fields ...[]byte) {
	var n [4]byte
	for _, f := range fields {
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write(f)
	}
}

// chain returns the chain called name, or nil.
func (r *Ruleset) chain(name string) *chain {
	for _, c := range r.chains {
		if c.c.Name == name {
			return c
		}
	}
	return nil
}
