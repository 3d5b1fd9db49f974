package rvtools

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

var (
	errNotNumber = errors.New("not a number")
	errFraction  = errors.New("not a whole number")
	errRange     = errors.New("too large")
)

// parseNumber reads a number as spreadsheets write it: 4096, -2, 4,096 or 4.096 or
// 4 096 (thousands grouped by a comma, a dot, an apostrophe or a space), and, when
// fraction is true, 1.5 or 1,5 (rounded up to 2). Three digits after a single ',' or '.'
// are read as a group of thousands: 1,500 is 1500.
func parseNumber(s string, fraction bool) (int64, error) {
	neg := false
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		neg, s = true, rest
	}
	if d := len(s); d > 0 && d < 19 && digitsOnly(s) { // what RVTools writes; fits an int64
		n, _ := strconv.ParseInt(s, 10, 64)
		if neg {
			n = -n
		}
		return n, nil
	}
	runs, seps, ok := splitDigits(s)
	if !ok {
		return 0, errNotNumber
	}
	whole, frac := runs, ""
	if !grouped(runs, seps) {
		// The last separator may be a decimal one: 1.5, 4,096.25, 4.096,25.
		last := seps[len(seps)-1]
		if last != '.' && last != ',' || !grouped(runs[:len(runs)-1], seps[:len(seps)-1]) ||
			len(seps) > 1 && seps[0] == last {
			return 0, errNotNumber
		}
		whole, frac = runs[:len(runs)-1], runs[len(runs)-1]
	}
	n, err := strconv.ParseInt(strings.Join(whole, ""), 10, 64)
	if err != nil {
		return 0, errRange
	}
	if strings.Trim(frac, "0") != "" {
		if !fraction {
			return 0, errFraction
		}
		if n == 1<<63-1 {
			return 0, errRange
		}
		n++
	}
	if neg {
		n = -n
	}
	return n, nil
}

// splitDigits splits s into runs of ASCII digits and the single separators between them.
func splitDigits(s string) (runs []string, seps []rune, ok bool) {
	start := 0
	for i := 0; i <= len(s); {
		if i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			continue
		}
		if i == start {
			return nil, nil, false // empty run: a leading, trailing or doubled separator
		}
		runs = append(runs, s[start:i])
		if i == len(s) {
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !isSeparator(r) {
			return nil, nil, false
		}
		seps = append(seps, r)
		i += size
		start = i
	}
	return runs, seps, len(runs) > 0
}

func isSeparator(r rune) bool {
	switch r {
	case ',', '.', '\'', ' ', '\u00a0', '\u202f':
		return true
	}
	return false
}

// grouped reports whether runs separated by seps are thousands groups: one separator
// throughout, a first run of 1 to 3 digits and the others of 3. A single run is grouped.
func grouped(runs []string, seps []rune) bool {
	if len(runs) == 0 || len(runs[0]) > 3 && len(runs) > 1 {
		return false
	}
	for i, r := range runs[1:] {
		if len(r) != 3 || seps[i] != seps[0] {
			return false
		}
	}
	return true
}

func digitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
