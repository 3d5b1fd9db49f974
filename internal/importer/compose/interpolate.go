package compose

import (
	"fmt"
	"slices"
	"strings"
)

// maxNesting bounds how deep references may nest (${A:-${B:-x}}); deeper is an error.
const maxNesting = 16

// lookupFunc returns a variable's value; ok is false when the variable is unset.
type lookupFunc func(name string) (value string, ok bool)

// interpolated is the result of interpolating one value.
type interpolated struct {
	value string
	// unset names the variables that were unset where no default applied: each became an
	// empty string.
	unset []string
	err   *interpError // a required variable without a value, or a malformed reference
}

// interpError is a reference that cannot be interpolated.
type interpError struct {
	msg, hint string
}

const referenceHint = "write $NAME, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}, " +
	"${NAME:+alternative} or ${NAME+alternative}; write $$ for a literal $"

// interpolate resolves the variable references of s as the compose specification defines
// them: $NAME and ${NAME} take the variable's value; ${NAME:-default} the default when NAME is
// unset or empty, ${NAME-default} only when it is unset; ${NAME:?message} and ${NAME?message}
// are errors when NAME is unset (or, with the colon, empty); ${NAME:+alternative} and
// ${NAME+alternative} give the alternative when NAME is set (and, with the colon, not empty)
// and nothing otherwise. Defaults, messages and alternatives are interpolated in turn, only
// when used. $$ is a literal $, and a $ that starts no reference stays as it is.
func interpolate(s string, lookup lookupFunc) interpolated {
	in := interpolator{lookup: lookup}
	v, err := in.expand(s, 0)
	if err != nil {
		return interpolated{err: err}
	}
	return interpolated{value: v, unset: in.unset}
}

type interpolator struct {
	lookup lookupFunc
	unset  []string
}

func (in *interpolator) expand(s string, depth int) (string, *interpError) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	if depth > maxNesting {
		return "", &interpError{
			msg:  fmt.Sprintf("variable references nest more than %d deep", maxNesting),
			hint: "nest fewer defaults"}
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i += 2
		case next == '{':
			end := closingBrace(s, i)
			if end < 0 {
				return "", &interpError{msg: fmt.Sprintf("%q opens a reference with ${ and does not close it with }", s[i:]),
					hint: referenceHint}
			}
			v, err := in.braced(s[i+2:end], depth)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i = end + 1
		case isNameStart(next):
			j := i + 2
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			b.WriteString(in.variable(s[i+1 : j]))
			i = j
		default:
			b.WriteByte('$')
			i++
		}
	}
	return b.String(), nil
}

// closingBrace returns the index of the '}' that closes the "${" at open, or -1. References
// nested in defaults (${A:-${B}}) are skipped whole.
func closingBrace(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch {
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			depth++
			i++
		case s[i] == '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// variable is a plain reference: the value, or an empty string (noted) when unset.
func (in *interpolator) variable(name string) string {
	if v, ok := in.lookup(name); ok {
		return v
	}
	if !slices.Contains(in.unset, name) {
		in.unset = append(in.unset, name)
	}
	return ""
}

// braced resolves the body of one ${...}.
func (in *interpolator) braced(body string, depth int) (string, *interpError) {
	n := 0
	if len(body) > 0 && isNameStart(body[0]) {
		for n < len(body) && isNameByte(body[n]) {
			n++
		}
	}
	bad := &interpError{msg: fmt.Sprintf("invalid variable reference %q", "${"+body+"}"), hint: referenceHint}
	if n == 0 {
		return "", bad
	}
	name, rest := body[:n], body[n:]
	if rest == "" {
		return in.variable(name), nil
	}
	colon := rest[0] == ':'
	if colon {
		rest = rest[1:]
	}
	if rest == "" {
		return "", bad
	}
	op, arg := rest[0], rest[1:]
	v, set := in.lookup(name)
	present := set && (!colon || v != "")
	switch op {
	case '-':
		if present {
			return v, nil
		}
		return in.expand(arg, depth+1)
	case '+':
		if present {
			return in.expand(arg, depth+1)
		}
		return "", nil
	case '?':
		if present {
			return v, nil
		}
		msg, err := in.expand(arg, depth+1)
		if err != nil {
			return "", err
		}
		what := "is not set"
		if colon && set {
			what = "is empty"
		}
		e := &interpError{msg: fmt.Sprintf("required variable %s %s", name, what),
			hint: "set " + name + " in the environment or in the project's .env file"}
		if msg = strings.TrimSpace(msg); msg != "" {
			e.msg += ": " + msg
		}
		return "", e
	}
	return "", bad
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameByte(c byte) bool {
	return isNameStart(c) || (c >= '0' && c <= '9')
}
