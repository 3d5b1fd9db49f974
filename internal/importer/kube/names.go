package kube

import (
	"strconv"
	"strings"
)

// maxLabel is the longest DNS label.
const maxLabel = 63

// dnsLabel turns a Kubernetes name (a DNS subdomain such as web.shop, or anything a user
// wrote) into a DNS label: lower case letters and digits, every run of other characters
// replaced by one '-', at most 63 characters. It returns "" when nothing usable is left.
func dnsLabel(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := b.String()
	if len(out) > maxLabel {
		out = out[:maxLabel]
	}
	return strings.TrimRight(out, "-")
}

// withSuffix appends -suffix to base, shortening base so that the result is a DNS label.
func withSuffix(base, suffix string) string {
	if n := maxLabel - len(suffix) - 1; len(base) > n {
		base = strings.TrimRight(base[:n], "-")
	}
	if base == "" {
		return suffix
	}
	return base + "-" + suffix
}

// namer hands out unique workload names in the order it is asked, so the same input always
// gives the same names.
type namer struct {
	used map[string]bool
	next map[string]int // the next number to try after base
}

func newNamer() *namer { return &namer{used: map[string]bool{}, next: map[string]int{}} }

// name returns base if it is free; else base-<namespace> when the object has a namespace;
// else base-2, base-3, ...
func (n *namer) name(base, namespace string) string {
	if !n.used[base] {
		n.used[base] = true
		return base
	}
	if ns := dnsLabel(namespace); ns != "" {
		if c := withSuffix(base, ns); !n.used[c] {
			n.used[c] = true
			return c
		}
	}
	for i := max(n.next[base], 2); ; i++ {
		if c := withSuffix(base, strconv.Itoa(i)); !n.used[c] {
			n.used[c] = true
			n.next[base] = i + 1
			return c
		}
	}
}
