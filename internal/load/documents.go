// Package load reads YAML and JSON documents and decodes strata's objects from them strictly:
// an unknown field, a value of the wrong type, a bad quantity or an invalid value is an error
// that names the file, line, column and field path. Every error of a file is reported at once.
//
// JSON is read as YAML (it is a subset), so both carry positions.
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
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []Document
	for i := 0; ; i++ {
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, diag.List{syntaxError(file, err)}
		}
		if len(root.Content) == 0 {
			continue
		}
		n := root.Content[0]
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			continue
		}
		d := Document{File: file, Index: i, Node: n, Line: n.Line, Col: n.Column}
		if n.Kind == yaml.MappingNode {
			d.APIVersion = scalarField(n, "apiVersion")
			d.Kind = scalarField(n, "kind")
		}
		docs = append(docs, d)
	}
}

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
