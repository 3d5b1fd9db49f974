package compose

import (
	"fmt"
	"strings"

	"strata.dev/strata/internal/diag"
)

// Options say where the variables of a compose file come from.
type Options struct {
	// Environ is the process environment (KEY=value items, as os.Environ returns them). Its
	// variables win over those of environment files.
	Environ []string
	// EnvFiles replace the project's .env file (the one beside the compose file): they are
	// read in order, each overriding the one before.
	EnvFiles []string
}

// env is where variables are looked up: the first scope that sets a variable wins.
type env []map[string]string

func (e env) lookup(name string) (string, bool) {
	for _, scope := range e {
		if v, ok := scope[name]; ok {
			return v, true
		}
	}
	return "", false
}

// with returns e followed by one more scope, which loses to all of e's.
func (e env) with(scope map[string]string) env {
	return append(e[:len(e):len(e)], scope)
}

// environ turns KEY=value items into a scope; an item without '=' is skipped.
func environ(items []string) map[string]string {
	m := make(map[string]string, len(items))
	for _, kv := range items {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// envProblem is an error or warning found in an environment file.
type envProblem struct {
	line, col int
	msg, hint string
	warning   bool
}

// parseEnvFile reads an environment file in the compose specification's syntax: one
// VAR[=[VAL]] per line, an optional "export " before it, # comments, blank lines. An
// unquoted value ends before " #" and is trimmed; a double-quoted value knows the escapes \n,
// \r, \t, \\ and \" and may span lines; a single-quoted one is literal but for \'. Unquoted
// and double-quoted values are interpolated with outer (which wins over the file: the
// process environment) and the file's own earlier variables; a VAR without '=' leaves the
// variable unset. The values are set into vars, which may hold earlier files' values.
func parseEnvFile(data string, outer env, vars map[string]string) []envProblem {
	var probs []envProblem
	lookup := outer.with(vars).lookup
	data = strings.TrimPrefix(strings.ReplaceAll(data, "\r\n", "\n"), "\ufeff")
	lines := strings.Split(data, "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := lines[i]
		trimmed := strings.TrimLeft(line, " \t")
		indent := len(line) - len(trimmed)
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(trimmed, "export "); ok {
			rest = strings.TrimLeft(rest, " \t")
			indent += len(trimmed) - len(rest)
			trimmed = rest
		}
		key, value, hasValue := strings.Cut(trimmed, "=")
		key = strings.TrimRight(key, " \t")
		if !validEnvKey(key) {
			probs = append(probs, envProblem{line: lineNo, col: indent + 1,
				msg:  fmt.Sprintf("invalid variable name %q", key),
				hint: "write one VAR=value per line; a name is letters, digits, '_', '.' and '-'"})
			continue
		}
		if !hasValue {
			continue // VAR alone: unset
		}
		value = strings.TrimLeft(value, " \t")
		col := indent + len(trimmed) - len(value) + 1
		var (
			text   string
			interp = true
		)
		switch {
		case strings.HasPrefix(value, `"`) || strings.HasPrefix(value, `'`):
			quote := value[0]
			q, end, ok := quoted(value, quote)
			for !ok && i+1 < len(lines) { // a quoted value may span lines
				i++
				value += "\n" + lines[i]
				q, end, ok = quoted(value, quote)
			}
			if !ok {
				probs = append(probs, envProblem{line: lineNo, col: col,
					msg: fmt.Sprintf("the value of %s opens a quote (%c) that no line closes", key, quote), hint: "close the quote"})
				continue
			}
			if after := strings.TrimSpace(value[end:]); after != "" && after[0] != '#' {
				probs = append(probs, envProblem{line: lineNo, col: col,
					msg:  fmt.Sprintf("the value of %s has %q after its closing quote", key, after),
					hint: "quote the whole value, or start a comment with #"})
				continue
			}
			text, interp = q, quote == '"'
		default:
			text = value
			if at := commentStart(text); at >= 0 {
				text = text[:at]
			}
			text = strings.TrimRight(text, " \t")
		}
		if interp {
			res := interpolate(text, lookup)
			switch {
			case res.err != nil:
				probs = append(probs, envProblem{line: lineNo, col: col, msg: res.err.msg, hint: res.err.hint})
				continue
			case len(res.unset) > 0:
				probs = append(probs, envProblem{line: lineNo, col: col, warning: true,
					msg:  fmt.Sprintf("variable %s is not set: the value of %s takes an empty string in its place", strings.Join(res.unset, ", "), key),
					hint: "set it earlier in this file or in the environment, or write $$ for a literal $"})
			}
			text = res.value
		}
		vars[key] = text
	}
	return probs
}

// validEnvKey accepts the names compose accepts in environment files.
func validEnvKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !isNameByte(c) && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// commentStart returns where an inline comment of an unquoted value starts: a # after a
// blank. -1 when there is none.
func commentStart(s string) int {
	for i := 1; i < len(s); i++ {
		if s[i] == '#' && (s[i-1] == ' ' || s[i-1] == '\t') {
			return i - 1
		}
	}
	return -1
}

// quoted reads the quoted value at the start of s: the text without quotes, escapes
// resolved, and the index after the closing quote. ok is false when the quote is not closed.
func quoted(s string, quote byte) (text string, end int, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == quote:
			return b.String(), i + 1, true
		case c == '\\' && i+1 < len(s):
			next := s[i+1]
			switch {
			case next == quote || next == '\\' && quote == '"':
				b.WriteByte(next)
				i++
				continue
			case quote == '"':
				if r, ok := map[byte]byte{'n': '\n', 'r': '\r', 't': '\t'}[next]; ok {
					b.WriteByte(r)
					i++
					continue
				}
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
}

// envError turns a problem in an environment file into a diagnostic.
func envError(file string, p envProblem) *diag.Error {
	return &diag.Error{File: file, Line: p.line, Col: p.col, Msg: p.msg, Hint: p.hint}
}
