// Package convert turns inputs into the strata documents that run them. Strata documents
// are taken as they are; everything else goes through the importers, and each imported
// workload becomes a Workload, placed in a Segment of its own compose project or Kubernetes
// namespace, with its source and notes on what did not carry over. strata import, apply and
// export kubernetes all read their inputs through Read, so they agree on what an input
// becomes.
//
// Terms: an Object is one strata document (a Workload or a Segment) with where it came
// from; a note says what of its source did not carry over or changed on the way; a skipped
// object is an input object that describes no workload.
package convert

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/importer"
	"strata.dev/strata/internal/inventory"
	"strata.dev/strata/internal/load"
)

// SegmentPer says how imported workloads are grouped into segments.
type SegmentPer string

const (
	// SegmentPerSource gives each compose project and each Kubernetes namespace a segment of
	// its own: the services of one project reach each other in it, as they do in compose's
	// project network. Objects of the default namespace and VMware VMs stay in the default
	// segment.
	SegmentPerSource SegmentPer = "source"
	// SegmentPerNone keeps every imported workload in the default segment.
	SegmentPerNone SegmentPer = "none"
)

// SegmentPers lists the valid SegmentPer values.
var SegmentPers = []SegmentPer{SegmentPerSource, SegmentPerNone}

// Options change how inputs are read and converted.
type Options struct {
	importer.Options
	// SegmentPer groups imported workloads into segments; empty means SegmentPerSource.
	SegmentPer SegmentPer
}

// Object is one strata document that the inputs became.
type Object struct {
	// Workload or Segment is set, the other is nil. Both are defaulted and valid.
	Workload *v1alpha1.Workload
	Segment  *v1alpha1.Segment
	// Source is where the object came from; for a segment made for a compose project or a
	// namespace, the first workload of it.
	Source v1alpha1.Source
	// Notes say what of the source did not carry over, or changed on the way.
	Notes []inventory.Note
	// Doc is the strata document the object was read from as it is; nil when imported.
	Doc *load.Object
	// Assessment is the object's assessment, when the caller added one (package convert
	// does not assess): its tier and reasons are written beside the object.
	Assessment *v1alpha1.AssessmentItem
}

// Kind is the object's kind: Workload or Segment.
func (o *Object) Kind() string {
	if o.Segment != nil {
		return v1alpha1.KindSegment
	}
	return v1alpha1.KindWorkload
}

// Name is the object's name.
func (o *Object) Name() string {
	if o.Segment != nil {
		return o.Segment.Metadata.Name
	}
	return o.Workload.Metadata.Name
}

// Ref names the object as Kind/name.
func (o *Object) Ref() string { return o.Kind() + "/" + o.Name() }

// Imported reports whether an importer made the object (it was not a strata document).
func (o *Object) Imported() bool { return o.Doc == nil }

// Result is what some inputs became.
type Result struct {
	// Objects are the Segments (first) and Workloads, in input order.
	Objects []*Object
	// Others are strata documents of other kinds (Fleet, AssessmentPolicy): the caller
	// decides what they mean to it.
	Others []*load.Object
	// Skipped lists input objects that describe no workload.
	Skipped []v1alpha1.SkippedObject
	// Warnings are problems that did not stop an object from being made.
	Warnings diag.List
	// Files are the files read, in order.
	Files []string
}

// Workloads returns the result's workloads as an inventory, for assessment.
func (r *Result) Workloads() inventory.Set {
	var set inventory.Set
	for _, o := range r.Objects {
		if o.Workload != nil {
			set.Items = append(set.Items, inventory.Item{Workload: *o.Workload, Source: o.Source, Notes: o.Notes})
		}
	}
	return set
}

// Imported reports whether any object was made by an importer.
func (r *Result) Imported() bool {
	for _, o := range r.Objects {
		if o.Imported() {
			return true
		}
	}
	return false
}

// Read reads every input named by paths (see importer.InputsWith); "-" reads stdin. A file
// whose documents are all strata documents is taken as it is; any other goes through the
// importers. It returns what it could read and every problem it found; an input that is
// wrong does not stop the others from being read.
func Read(paths []string, stdin io.Reader, opts Options) (*Result, diag.List) {
	r := &Result{}
	files, err := importer.InputsWith(paths, opts.Options)
	if err != nil {
		return r, diag.List{{Msg: err.Error(), Hint: "check the path"}}
	}
	r.Files = files
	var (
		imported inventory.Set
		errs     diag.List
	)
	for _, f := range files {
		data, err := load.ReadInput(f, stdin)
		if err != nil {
			errs = append(errs, &diag.Error{File: f, Msg: err.Error(), Hint: "check the file name and its permissions"})
			continue
		}
		if docs, ok := strataOnly(f, data); ok {
			for _, doc := range docs {
				obj, derrs := load.Decode(doc)
				errs = append(errs, derrs...)
				if obj == nil || len(derrs) > 0 {
					continue
				}
				r.add(obj)
			}
			continue
		}
		set, ferrs := importer.FileWith(f, data, opts.Options)
		imported.Add(set)
		errs = append(errs, ferrs...)
	}
	r.Skipped = imported.Skipped
	r.Warnings = imported.Warnings
	r.addImported(imported.Items, opts.SegmentPer)
	errs.Sort()
	return r, errs
}

// strataOnly returns the documents of data when there is at least one and every one is a
// strata document.
func strataOnly(name string, data []byte) ([]load.Document, bool) {
	docs, errs := load.Documents(name, data)
	if len(errs) > 0 || len(docs) == 0 {
		return nil, false
	}
	for _, d := range docs {
		if !load.IsStrata(d) {
			return nil, false
		}
	}
	return docs, true
}

// add adds a strata document taken as it is.
func (r *Result) add(obj *load.Object) {
	src := v1alpha1.Source{File: obj.Doc.File, Line: obj.Doc.Line, Format: v1alpha1.FormatStrata, Kind: obj.Doc.Kind}
	switch v := obj.Object.(type) {
	case *v1alpha1.Workload:
		r.Objects = append(r.Objects, &Object{Workload: v, Source: src, Doc: obj})
	case *v1alpha1.Segment:
		r.Objects = append(r.Objects, &Object{Segment: v, Source: src, Doc: obj})
	default:
		r.Others = append(r.Others, obj)
	}
}

// addImported adds the importers' workloads, after the strata documents: each gets a name
// no other workload has, and, unless per is none, the segment of its project or namespace.
// Segments that no strata document defines are made, before the first workload.
func (r *Result) addImported(items []inventory.Item, per SegmentPer) {
	taken := map[string]bool{}
	segments := map[string]bool{v1alpha1.DefaultSegment: true}
	for _, o := range r.Objects {
		if o.Workload != nil {
			taken[o.Name()] = true
		} else {
			segments[o.Name()] = true
		}
	}
	var made []*Object
	var workloads []*Object
	for i := range items {
		it := &items[i]
		o := &Object{Workload: &it.Workload, Source: it.Source, Notes: it.Notes}
		uniqueName(o, taken)
		if per != SegmentPerNone && o.Workload.Spec.Segment == v1alpha1.DefaultSegment {
			if group, kind := groupOf(it); group != "" {
				name := segmentName(group)
				o.Workload.Spec.Segment = name
				if !segments[name] {
					segments[name] = true
					made = append(made, newSegment(name, group, kind, it.Source))
				}
			}
		}
		workloads = append(workloads, o)
	}
	// Segments go first: apply creates them before the workloads that use them.
	var segs, rest []*Object
	for _, o := range r.Objects {
		if o.Segment != nil {
			segs = append(segs, o)
		} else {
			rest = append(rest, o)
		}
	}
	objs := make([]*Object, 0, len(segs)+len(made)+len(rest)+len(workloads))
	objs = append(objs, segs...)
	objs = append(objs, made...)
	objs = append(objs, rest...)
	objs = append(objs, workloads...)
	r.Objects = objs
}

// uniqueName renames an imported workload whose name another workload already has.
func uniqueName(o *Object, taken map[string]bool) {
	name := o.Workload.Metadata.Name
	if !taken[name] {
		taken[name] = true
		return
	}
	for n := 2; ; n++ {
		suffix := fmt.Sprintf("-%d", n)
		cand := strings.TrimRight(name[:min(len(name), 63-len(suffix))], "-") + suffix
		if taken[cand] {
			continue
		}
		taken[cand] = true
		if o.Source.Name == "" {
			o.Source.Name = name
		}
		o.Workload.Metadata.Name = cand
		o.Notes = append(o.Notes, inventory.Note{Path: "metadata.name",
			Message: fmt.Sprintf("named %s: another input already has a workload named %s", cand, name)})
		return
	}
}

// annotationComposeProject is where the compose importer keeps a service's project name
// (the file's top-level name:).
const annotationComposeProject = "strata.dev/compose-project"

// groupOf returns the compose project or Kubernetes namespace an imported workload belongs
// to, and what kind of group that is; "" for none (the default namespace, VMware VMs).
// A compose project without a name: is named after the directory of its file, as compose
// names it.
func groupOf(it *inventory.Item) (group, kind string) {
	switch it.Source.Format {
	case v1alpha1.FormatCompose:
		if p := it.Workload.Metadata.Annotations[annotationComposeProject]; p != "" {
			return p, "compose project"
		}
		if it.Source.File == "-" || it.Source.File == "" {
			return "", ""
		}
		abs, err := filepath.Abs(it.Source.File)
		if err != nil {
			return "", ""
		}
		return filepath.Base(filepath.Dir(abs)), "compose project"
	case v1alpha1.FormatKubernetes:
		if ns, _, ok := strings.Cut(it.Source.Name, "/"); ok && ns != "default" {
			return ns, "namespace"
		}
	}
	return "", ""
}

// segmentName makes a DNS label of a project or namespace name: lower case, any other
// character than a letter, digit or '-' replaced by '-', at most 63 characters.
func segmentName(group string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(group) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	name = strings.TrimRight(name[:min(len(name), 63)], "-")
	for strings.Contains(name, "--") {
		name = strings.ReplaceAll(name, "--", "-")
	}
	if name == "" {
		return "imported"
	}
	return name
}

// newSegment makes the segment of a compose project or namespace, noting a changed name.
func newSegment(name, group, kind string, first v1alpha1.Source) *Object {
	s := &v1alpha1.Segment{Metadata: v1alpha1.ObjectMeta{Name: name}}
	s.SetDefaults()
	src := v1alpha1.Source{File: first.File, Line: first.Line, Format: first.Format, Kind: kind}
	src.Name = group
	o := &Object{Segment: s, Source: src}
	if name != group {
		o.Notes = append(o.Notes, inventory.Note{Path: "metadata.name",
			Message: fmt.Sprintf("named %s: the %s %q is not a DNS label", name, kind, group)})
	}
	return o
}
