package rvtools

import (
	"strconv"
	"strings"
)

// maxName is the longest DNS label.
const maxName = 63

// dnsLabel turns a VM name into a DNS label: lower case, every run of other characters
// than letters and digits made one '-', no '-' at either end, at most 63 characters.
// It returns "" when nothing is left.
func dnsLabel(s string) string {
	var b strings.Builder
	dash := false
	for i := 0; i < len(s) && b.Len() < maxName; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		default:
			dash = true
			continue
		}
		if dash && b.Len() > 0 {
			b.WriteByte('-')
		}
		dash = false
		b.WriteByte(c)
	}
	out := b.String()
	return strings.TrimRight(out[:min(len(out), maxName)], "-")
}

// names hands out the workload names of one file, each once.
type names struct {
	used map[string]bool
	next map[string]int // the next suffix to try for a name already used
}

func newNames() *names {
	return &names{used: map[string]bool{}, next: map[string]int{}}
}

// claim returns the DNS label for the VM named vm on line, made unique with a suffix -2,
// -3, ... when an earlier row has it. A name with nothing usable becomes vm-LINE.
func (n *names) claim(vm string, line int) string {
	base := dnsLabel(vm)
	if base == "" {
		base = "vm-" + strconv.Itoa(line)
	}
	if !n.used[base] {
		n.used[base] = true
		return base
	}
	for i := max(n.next[base], 2); ; i++ {
		suffix := "-" + strconv.Itoa(i)
		name := strings.TrimRight(base[:min(len(base), maxName-len(suffix))], "-") + suffix
		if !n.used[name] {
			n.used[name] = true
			n.next[base] = i + 1
			return name
		}
	}
}
