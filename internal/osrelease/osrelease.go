// Package osrelease understands operating-system names as VMware inventories and users write
// them ("Microsoft Windows Server 2012 (64-bit)", "CentOS Linux release 7.9.2009 (Core)",
// "Ubuntu 22.04") and knows which releases are end of life.
//
// Parse turns free text into a Release with a normalized version such as "CentOS 7",
// "Ubuntu 16.04" or "Windows Server 2012 R2". Parsing a normalized version gives it back
// unchanged. EndOfLife looks a release up in a table kept as data (eol.yaml, embedded).
package osrelease

import (
	"regexp"
	"strings"

	"strata.dev/strata/api/v1alpha1"
)

// Release is an OS release recognized in free text.
type Release struct {
	Family v1alpha1.OSFamily // linux | windows | other
	// Version is normalized, e.g. "CentOS 7", "Ubuntu 16.04", "Windows Server 2012 R2",
	// "RHEL 6", "SLES 11", "Debian 9". For text naming no known distribution it is the
	// text itself, trimmed, with its "(64-bit)" or "(32-bit)" removed.
	Version string
}

// Parse recognizes the operating system named by s. It never fails: text naming no known
// distribution gives family other (linux when the text says Linux) and the cleaned text as
// Version; empty text gives family other and an empty Version.
func Parse(s string) Release {
	return parse(s).release()
}

// parsed is what Parse found, with the parts EndOfLife compares.
type parsed struct {
	family  v1alpha1.OSFamily
	distro  *distro // nil when no distribution was recognized
	version string  // normalized version text ("7", "16.04", "2012 R2", "XP"); may be empty
	text    string  // the cleaned input, used as Version when distro is nil
}

func (p parsed) release() Release {
	if p.distro == nil {
		return Release{Family: p.family, Version: p.text}
	}
	v := p.distro.name
	if p.version != "" {
		v += " " + p.version
	}
	return Release{Family: p.family, Version: v}
}

func parse(s string) parsed {
	text := clean(s)
	toks := tokens(text)
	d, end := findDistro(toks)
	if d == nil {
		return parsed{family: familyOfUnknown(toks), text: text}
	}
	d, version := d.version(toks[end:])
	return parsed{family: d.family, distro: d, version: version, text: text}
}

// familyOfUnknown is linux when the text says Linux ("Other 3.x or later Linux"), else other.
func familyOfUnknown(toks []string) v1alpha1.OSFamily {
	for _, t := range toks {
		if t == "linux" || t == "gnu/linux" {
			return v1alpha1.OSLinux
		}
	}
	return v1alpha1.OSOther
}

// bitness matches the word size VMware appends to guest names: "(64-bit)", "(32-bit)",
// and the same without parentheses.
var bitness = regexp.MustCompile(`(?i)\(\s*(?:32|64)[- ]?bits?\s*\)|\b(?:32|64)-bits?\b`)

// clean returns s as valid UTF-8 with its word size removed and its white space collapsed.
// It is idempotent: cleaning its result changes nothing.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for {
		next := strings.Join(strings.Fields(s), " ")
		next = bitness.ReplaceAllString(next, " ")
		next = strings.Join(strings.Fields(next), " ")
		if next == s {
			return s
		}
		s = next
	}
}

// tokens splits text into lower-case ASCII words of letters, digits, '.', '/' and '_'
// ("gnu/linux", "7.9.2009", "4/5", "8.x", "x86_64"), without leading or trailing '.' and '/'.
func tokens(text string) []string {
	var out []string
	start := -1
	flush := func(end int) {
		if start < 0 {
			return
		}
		if t := strings.Trim(text[start:end], "./"); t != "" {
			out = append(out, strings.ToLower(t))
		}
		start = -1
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if isTokenByte(c) {
			if start < 0 {
				start = i
			}
			continue
		}
		flush(i)
	}
	flush(len(text))
	return out
}

func isTokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '/' || c == '_'
}
