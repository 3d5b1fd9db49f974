package compose

import (
	"errors"
	"strings"
)

// splitShell splits a command line into words the way a POSIX shell does, without expanding
// anything: blanks separate words, single quotes keep everything literally, double quotes
// keep everything but backslash escapes of $ ` " \ and newline, and a backslash outside
// quotes escapes the next character.
func splitShell(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		inArg bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			if inArg {
				words = append(words, cur.String())
				cur.Reset()
				inArg = false
			}
			continue
		case '\\':
			if i+1 < len(s) {
				i++
				if s[i] != '\n' { // a backslash-newline joins lines
					cur.WriteByte(s[i])
				}
			} else {
				cur.WriteByte(c)
			}
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote in command")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case '"':
			j, err := doubleQuoted(s, i+1, &cur)
			if err != nil {
				return nil, err
			}
			i = j
		default:
			cur.WriteByte(c)
		}
		inArg = true
	}
	if inArg {
		words = append(words, cur.String())
	}
	return words, nil
}

// doubleQuoted copies the double-quoted text starting at i into cur and returns the index of
// the closing quote.
func doubleQuoted(s string, i int, cur *strings.Builder) (int, error) {
	for ; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return i, nil
		case '\\':
			if i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
				i++
				if s[i] != '\n' {
					cur.WriteByte(s[i])
				}
				continue
			}
			cur.WriteByte(c)
		default:
			cur.WriteByte(c)
		}
	}
	return 0, errors.New("unterminated double quote in command")
}
