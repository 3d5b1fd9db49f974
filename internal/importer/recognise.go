package importer

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"

	"strata.dev/strata/internal/diag"
)

// recognise turns away inputs that strata will not read, before any importer sees them: an
// input with nothing in it, and the formats strata knows but does not read (Helm chart
// templates), with what to do instead. It returns nil for everything else.
func recognise(name string, data []byte) *diag.Error {
	if empty(data) {
		return &diag.Error{File: name, Msg: "no documents: the input is empty or holds only comments",
			Hint: "give a file with strata documents, Kubernetes manifests, a compose file or an RVTools vInfo CSV export"}
	}
	if line, ok := helmTemplate(name, data); ok {
		return &diag.Error{File: name, Line: line, Msg: "a Helm chart template, which strata does not read as it is",
			Hint: "render it with helm template first: helm template NAME CHART > manifest.yaml, then import the manifest"}
	}
	return nil
}

// empty reports whether data holds nothing but white space, YAML comments, document markers
// and a byte order mark.
func empty(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		switch {
		case len(line) == 0, line[0] == '#', bytes.Equal(line, []byte("---")), bytes.Equal(line, []byte("...")):
		default:
			return false
		}
	}
	return true
}

// helmAction matches a Go template action as Helm charts write them: a trimming action
// ({{- ... -}}), a comment, control flow, or a reference to what Helm passes in (.Values,
// .Release, .Chart, ...). Plain actions such as a docker --format '{{.State}}' argument in
// a compose file do not match.
var helmAction = regexp.MustCompile(`\{\{-|\{\{\s*/\*|\{\{\s*(if|else|end|range|with|define|include|template|toYaml|tpl|required)\b|\{\{[^}]*\.(Values|Release|Chart|Capabilities|Files|Template)\b`)

// helmTemplate reports whether the input is part of a Helm chart: its Chart.yaml, a file in
// the templates directory of a chart, or a file with Helm's template actions; line is the
// first action's line, 0 when there is none.
func helmTemplate(name string, data []byte) (line int, ok bool) {
	if loc := helmAction.FindIndex(data); loc != nil {
		return 1 + bytes.Count(data[:loc[0]], []byte("\n")), true
	}
	if name == "-" {
		return 0, false
	}
	if filepath.Base(name) == "Chart.yaml" {
		return 0, true
	}
	for dir := filepath.Dir(name); ; {
		parent := filepath.Dir(dir)
		if filepath.Base(dir) == "templates" {
			if _, err := os.Stat(filepath.Join(parent, "Chart.yaml")); err == nil {
				return 0, true
			}
		}
		if parent == dir {
			return 0, false
		}
		dir = parent
	}
}
