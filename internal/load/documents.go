// Package load reads YAML and JSON documents and decodes strata's objects from them strictly:
// an unknown field, a value of the wrong type, a bad quantity or an invalid value is an error
// that names the file, line, column and field path. Every error of a file is reported at once.
//
// JSON is read as YAML (it is a subset), so both carry positions. Stream reads a file's
// documents one at a time; Loose decodes the documents of other systems (Kubernetes objects)
// with the same checks as Strict but ignoring the fields strata does not read.
package load

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"strata.dev/strata/internal/diag"
)

// Document is one document of a YAML or JSON stream.
type Document struct {
	File  string
	Index int // position in the stream, from 0
	// Node is the document's content: usually a mapping. Aliases are left unresolved.
	Node       *yaml.Node
	Line, Col  int // where the document's content starts
	APIVersion string
	Kind       string
}

// Documents splits data into its documents, skipping empty ones. A syntax error ends the
// stream: the documents before it are returned with the error.
func Documents(file string, data []byte) ([]Document, diag.List) {
	s := NewStream(file, bytes.NewReader(data))
	var docs []Document
	for {
		doc, ok := s.Next()
		if !ok {
			break
		}
		docs = append(docs, doc)
	}
	if err := s.Err(); err != nil {
		return docs, diag.List{err}
	}
	return docs, nil
}

// Stream reads the documents of a YAML or JSON stream one at a time, so that a reader that
// is done with a document can let it go before the next is parsed: memory then follows the
// largest document, not the whole input.
type Stream struct {
	file  string
	dec   *yaml.Decoder
	index int
	err   *diag.Error
	done  bool
}

// NewStream reads the documents of r, named file in positions and errors.
func NewStream(file string, r io.Reader) *Stream {
	return &Stream{file: file, dec: yaml.NewDecoder(r)}
}

// Next returns the next document that is not empty. It returns false at the end of the
// stream or at a syntax error, which ends the stream; Err tells which.
func (s *Stream) Next() (Document, bool) {
	for !s.done {
		var root yaml.Node
		err := s.dec.Decode(&root)
		i := s.index
		s.index++
		if errors.Is(err, io.EOF) {
			s.done = true
			break
		}
		if err != nil {
			s.done, s.err = true, syntaxError(s.file, err)
			break
		}
		if len(root.Content) == 0 {
			continue
		}
		n := root.Content[0]
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			continue
		}
		d := Document{File: s.file, Index: i, Node: n, Line: n.Line, Col: n.Column}
		if n.Kind == yaml.MappingNode {
			d.APIVersion = scalarField(n, "apiVersion")
			d.Kind = scalarField(n, "kind")
		}
		return d, true
	}
	return Document{}, false
}

// Err is the syntax error that ended the stream, or nil.
func (s *Stream) Err() *diag.Error { return s.err }

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are the YAML parser's (not scanner's) messages: the parser reports their
// line counted from 0, the scanner from 1.
var parserProblems = map[string]bool{
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected key":              true,
	"did not find expected '-' indicator":    true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found undefined tag handle":             true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

func syntaxError(file string, err error) *diag.Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0 // a message without a line is about the first one
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if parserProblems[msg] || line == 0 {
		line++
	}
	return (&diag.Error{File: file, Line: line, Msg: "syntax error: " + msg}).
		WithHint("fix the YAML or JSON syntax; a document must be a mapping of fields")
}

// scalarField returns the value of a top-level scalar key of a mapping, or "".
func scalarField(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value
		}
	}
	return ""
}

// Field returns the value node of a key of a mapping node, or nil.
func Field(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
