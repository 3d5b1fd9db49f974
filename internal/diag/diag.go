// Package diag holds the errors strata reports about its inputs: each one says where
// (file, line, column, field path), what is wrong, and what to do about it.
package diag

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in an input file.
type Error struct {
	File string
	Line int    // 1-based; 0 when unknown
	Col  int    // 1-based; 0 when unknown
	Path string // field path such as spec.ports[0].port; empty for the whole document
	Msg  string // what is wrong
	Hint string // what to do; may be empty
}

// Error formats e as FILE:LINE:COL: path: message (hint).
func (e *Error) Error() string {
	var b strings.Builder
	if e.File == "" {
		if e.Path != "" {
			b.WriteString(e.Path)
			b.WriteString(": ")
		}
		b.WriteString(e.Msg)
		if e.Hint != "" {
			b.WriteString(" (" + e.Hint + ")")
		}
		return b.String()
	}
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// List is every problem found in one or more files. A nil List is no problem.
type List []*Error

// Error prints one problem per line.
func (l List) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns l as an error, or nil when l is empty.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Sort orders the problems by file, line, column and path.
func (l List) Sort() {
	slices.SortStableFunc(l, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
			cmp.Compare(a.Path, b.Path),
		)
	})
}

// Errorf makes an Error with a formatted message.
func Errorf(file string, line, col int, path, format string, args ...any) *Error {
	return &Error{File: file, Line: line, Col: col, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// WithHint sets the hint of e and returns e.
func (e *Error) WithHint(format string, args ...any) *Error {
	e.Hint = fmt.Sprintf(format, args...)
	return e
}
