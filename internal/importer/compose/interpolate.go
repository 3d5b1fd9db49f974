package compose

import "strings"

// maxNesting bounds how deep defaults may nest (${A:-${B:-x}}) before the text is kept as is.
const maxNesting = 16

// interpolate resolves compose interpolation without reading the environment:
// ${VAR:-default} and ${VAR-default} become their default (itself interpolated), $$ becomes $,
// and every other reference is kept as written.
func interpolate(s string) string {
	return interpolateDepth(s, 0)
}

func interpolateDepth(s string, depth int) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
			continue
		case '{':
			end := closingBrace(s, i+1)
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			b.WriteString(reference(s[i:end+1], s[i+2:end], depth))
			i = end + 1
			continue
		}
		b.WriteByte('$')
		i++
	}
	return b.String()
}

// closingBrace returns the index of the '}' that closes the '{' at open, or -1.
func closingBrace(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// reference resolves one ${...}: raw is the whole reference, body what is inside the braces.
func reference(raw, body string, depth int) string {
	name := 0
	for name < len(body) && isNameByte(body[name]) {
		name++
	}
	if name == 0 || depth >= maxNesting {
		return raw
	}
	rest := body[name:]
	switch {
	case strings.HasPrefix(rest, ":-"):
		return interpolateDepth(rest[2:], depth+1)
	case strings.HasPrefix(rest, "-"):
		return interpolateDepth(rest[1:], depth+1)
	}
	return raw
}

func isNameByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
