package osrelease

import "strings"

// A version is one or more alternatives separated by '/' (VMware's "CentOS 4/5"), each
// made of dot-separated parts: a number, or x for any ("8.x"). The first part of an
// alternative is a number.

// numericVersion reads the version at the start of tok, keeping at most parts parts of each
// alternative. It returns "" when tok does not start with a digit.
func numericVersion(tok string, parts int) string {
	var b strings.Builder
	i := 0
	for alt := 0; ; alt++ {
		j := i
		if alt > 0 {
			if j >= len(tok) || tok[j] != '/' {
				break
			}
			j++
		}
		n := digits(tok[j:])
		if n == 0 {
			break
		}
		if alt > 0 {
			b.WriteByte('/')
		}
		b.WriteString(tok[j : j+n])
		j += n
		kept := 1
		for j+1 < len(tok) && tok[j] == '.' {
			n := digits(tok[j+1:])
			if n == 0 && tok[j+1] == 'x' {
				n = 1
			}
			if n == 0 {
				break
			}
			if kept < parts {
				b.WriteString(tok[j : j+1+n])
				kept++
			}
			j += 1 + n
		}
		i = j
	}
	return b.String()
}

// digits is the length of the run of ASCII digits at the start of s.
func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// compareVersions compares two versions part by part, numerically; a missing part counts as
// 0 and an x part matches anything. A version with alternatives compares as its highest.
func compareVersions(a, b string) int {
	return compareParts(highest(a), highest(b))
}

func highest(v string) []string {
	var best []string
	for alt := range strings.SplitSeq(v, "/") {
		p := strings.Split(alt, ".")
		if best == nil || compareParts(p, best) > 0 {
			best = p
		}
	}
	return best
}

func compareParts(a, b []string) int {
	for i := range max(len(a), len(b)) {
		x, y := "0", "0"
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x == "x" || y == "x" {
			return 0
		}
		if c := compareNumbers(x, y); c != 0 {
			return c
		}
	}
	return 0
}

// compareNumbers compares two strings of decimal digits of any length.
func compareNumbers(x, y string) int {
	x = strings.TrimLeft(x, "0")
	y = strings.TrimLeft(y, "0")
	if len(x) != len(y) {
		if len(x) < len(y) {
			return -1
		}
		return 1
	}
	return strings.Compare(x, y)
}
