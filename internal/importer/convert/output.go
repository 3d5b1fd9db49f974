package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/inventory"
)

// WriteYAML writes the objects as a stream of strata documents that strata apply -f takes as
// it is. Comments before each document name its source, its assessment (when the caller
// added one) and its notes; comments at the end list the skipped objects and the warnings.
func WriteYAML(w io.Writer, r *Result) error {
	var b bytes.Buffer
	for i, o := range r.Objects {
		if i > 0 {
			b.WriteString("---\n")
		}
		comment(&b, "from "+o.SourceLabel())
		if a := o.Assessment; a != nil {
			comment(&b, fmt.Sprintf("tier: %s%s", a.Tier, requested(a)))
			for _, rs := range a.Reasons {
				comment(&b, fmt.Sprintf("  %s (%s %s): %s", rs.Rule, rs.Effect, rs.Tier, rs.Message))
			}
			for _, v := range a.Violations {
				comment(&b, "violation: "+v.Message)
			}
		}
		for _, n := range o.Notes {
			comment(&b, "note: "+noteText(o, n))
		}
		doc, err := yaml.Marshal(body(o))
		if err != nil {
			return fmt.Errorf("write %s: %w", o.Ref(), err)
		}
		b.Write(doc)
	}
	if len(r.Skipped) > 0 || len(r.Warnings) > 0 {
		if len(r.Objects) > 0 {
			b.WriteString("\n")
		}
		for _, s := range r.Skipped {
			comment(&b, "skipped: "+SkippedText(s))
		}
		for _, e := range r.Warnings {
			comment(&b, "warning: "+e.Error())
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// body is the object as it is written: without status or resource version.
func body(o *Object) any {
	if o.Segment != nil {
		s := *o.Segment
		s.Status, s.Metadata.ResourceVersion = nil, ""
		return &s
	}
	wl := *o.Workload
	wl.Status, wl.Metadata.ResourceVersion = nil, ""
	return &wl
}

func requested(a *v1alpha1.AssessmentItem) string {
	if a.Requested == "" || a.Requested == v1alpha1.IsolationAuto {
		if len(a.Reasons) == 0 {
			return " (no rule asks for more)"
		}
		return ""
	}
	return fmt.Sprintf(" (isolation %s asked for)", a.Requested)
}

// comment writes text as YAML comment lines.
func comment(b *bytes.Buffer, text string) {
	for line := range strings.SplitSeq(text, "\n") {
		b.WriteString(strings.TrimRight("# "+line, " "))
		b.WriteString("\n")
	}
}

// SourceLabel names a source as file:line, kind name (compose.yaml:12, service web).
func SourceLabel(src v1alpha1.Source) string {
	s := src.File
	if src.Line > 0 {
		s += fmt.Sprintf(":%d", src.Line)
	}
	if src.Kind != "" {
		s += ", " + src.Kind
		if src.Name != "" {
			s += " " + src.Name
		}
	}
	return s
}

// SourceLabel names the object's source as file:line, kind name (compose.yaml:12, service
// web); the name is the object's own unless the source's differs.
func (o *Object) SourceLabel() string {
	src := o.Source
	if src.Name == "" {
		src.Name = o.Name()
	}
	return SourceLabel(src)
}

// noteText is a note as one line: where in the source, and what.
func noteText(o *Object, n inventory.Note) string {
	line := n.Line
	if line == 0 {
		line = o.Source.Line
	}
	where := o.Source.File
	if line > 0 {
		where += fmt.Sprintf(":%d", line)
	}
	if n.Path != "" {
		where += ": " + n.Path
	}
	return where + ": " + n.Message
}

// NoteLines returns every note of the objects as one line each, for people:
// FILE:LINE: path: message (Workload/web).
func (r *Result) NoteLines() []string {
	var lines []string
	for _, o := range r.Objects {
		for _, n := range o.Notes {
			lines = append(lines, fmt.Sprintf("%s (%s)", noteText(o, n), o.Ref()))
		}
	}
	return lines
}

// SkippedText is a skipped object as one line: where, what and why.
func SkippedText(s v1alpha1.SkippedObject) string {
	return SourceLabel(s.Source) + ": " + s.Reason
}

// List is the JSON form of a result: the objects as a strata List, and beside them what
// people need to know about each.
type List struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Items are the objects, as apply takes them.
	Items []any `json:"items"`
	// Sources say where each item came from and how it was assessed, in the items' order.
	Sources []ItemSource `json:"sources"`
	// Notes are every item's notes.
	Notes []ListNote `json:"notes"`
	// Skipped are the input objects that describe no workload.
	Skipped []v1alpha1.SkippedObject `json:"skipped"`
	// Warnings are problems that did not stop an item from being made.
	Warnings []Warning `json:"warnings"`
}

// ItemSource is where one item came from, and its assessment when there is one.
type ItemSource struct {
	Object     string               `json:"object"` // Kind/name
	Source     v1alpha1.Source      `json:"source"`
	Tier       v1alpha1.Tier        `json:"tier,omitempty"`
	Requested  v1alpha1.Isolation   `json:"requested,omitempty"`
	Reasons    []v1alpha1.Reason    `json:"reasons,omitempty"`
	Violations []v1alpha1.Violation `json:"violations,omitempty"`
}

// ListNote is one note about an item.
type ListNote struct {
	Object  string          `json:"object"` // Kind/name
	Source  v1alpha1.Source `json:"source"`
	Line    int             `json:"line"` // the line the note is about
	Path    string          `json:"path,omitempty"`
	Message string          `json:"message"`
}

// Warning is one problem that did not stop an import.
type Warning struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// JSON returns the result as a List.
func (r *Result) JSON() List {
	l := List{APIVersion: v1alpha1.GroupVersion, Kind: "List", Items: []any{}, Sources: []ItemSource{},
		Notes: []ListNote{}, Skipped: r.Skipped, Warnings: []Warning{}}
	if l.Skipped == nil {
		l.Skipped = []v1alpha1.SkippedObject{}
	}
	for _, o := range r.Objects {
		l.Items = append(l.Items, body(o))
		src := ItemSource{Object: o.Ref(), Source: o.Source}
		if a := o.Assessment; a != nil {
			src.Tier, src.Requested, src.Reasons, src.Violations = a.Tier, a.Requested, a.Reasons, a.Violations
		}
		l.Sources = append(l.Sources, src)
		for _, n := range o.Notes {
			line := n.Line
			if line == 0 {
				line = o.Source.Line
			}
			l.Notes = append(l.Notes, ListNote{Object: o.Ref(), Source: o.Source, Line: line, Path: n.Path, Message: n.Message})
		}
	}
	for _, e := range r.Warnings {
		l.Warnings = append(l.Warnings, Warning{File: e.File, Line: e.Line, Col: e.Col, Path: e.Path, Message: e.Msg, Hint: e.Hint})
	}
	return l
}

// WriteJSON writes the result as one JSON document, a List.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.JSON())
}
