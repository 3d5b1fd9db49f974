package load

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
)

// Object is a strata object decoded, defaulted and validated, with where it came from.
type Object struct {
	Doc Document
	// Object is a *v1alpha1.Workload, *v1alpha1.Segment, *v1alpha1.Fleet or *v1alpha1.AssessmentPolicy.
	Object any
	// Positions locates the document's fields, for errors found later (by assessment, say).
	Positions Positions
}

// Errorf makes an error about a field of the object, placed at the field's position.
func (o *Object) Errorf(path, hint, format string, args ...any) *diag.Error {
	e := &diag.Error{File: o.Doc.File, Line: o.Doc.Line, Col: o.Doc.Col, Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint}
	if p, ok := o.Positions.Lookup(path); ok {
		e.Line, e.Col = p.Line, p.Col
	}
	return e
}

// Kinds lists the kinds of strata document that Decode accepts.
var Kinds = []string{v1alpha1.KindWorkload, v1alpha1.KindSegment, v1alpha1.KindFleet, v1alpha1.KindAssessmentPolicy}

// IsStrata reports whether a document claims to be one of strata's.
func IsStrata(doc Document) bool {
	return strings.HasPrefix(doc.APIVersion, "strata.dev/")
}

// Decode decodes one strata document strictly, applies defaults and validates it.
func Decode(doc Document) (*Object, diag.List) {
	if doc.APIVersion != v1alpha1.GroupVersion {
		return nil, diag.List{docError(doc, "apiVersion", fmt.Sprintf("unsupported apiVersion %q", doc.APIVersion),
			"use apiVersion: "+v1alpha1.GroupVersion)}
	}
	var (
		out      any
		validate func() field.ErrorList
	)
	switch doc.Kind {
	case v1alpha1.KindWorkload:
		w := &v1alpha1.Workload{}
		out, validate = w, func() field.ErrorList { w.SetDefaults(); return v1alpha1.ValidateWorkload(w) }
	case v1alpha1.KindSegment:
		s := &v1alpha1.Segment{}
		out, validate = s, func() field.ErrorList { s.SetDefaults(); return v1alpha1.ValidateSegment(s) }
	case v1alpha1.KindFleet:
		f := &v1alpha1.Fleet{}
		out, validate = f, func() field.ErrorList { f.SetDefaults(); return v1alpha1.ValidateFleet(f) }
	case v1alpha1.KindAssessmentPolicy:
		p := &v1alpha1.AssessmentPolicy{}
		out, validate = p, func() field.ErrorList { p.SetDefaults(); return v1alpha1.ValidatePolicy(p) }
	default:
		msg := fmt.Sprintf("unknown kind %q", doc.Kind)
		if doc.Kind == "" {
			msg = "the document has no kind"
		}
		return nil, diag.List{docError(doc, "kind", msg, "use one of "+strings.Join(Kinds, ", "))}
	}
	pos, errs := Strict(doc, out)
	obj := &Object{Doc: doc, Object: out, Positions: pos}
	bad := make(map[string]bool, len(errs))
	for _, e := range errs {
		bad[e.Path] = true
	}
	for _, e := range obj.FieldErrors(validate()) {
		if !bad[e.Path] { // a value left out is no second problem
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return obj, nil
}

// FieldErrors places validation errors at their fields' positions in the object's file.
func (o *Object) FieldErrors(errs field.ErrorList) diag.List {
	var out diag.List
	for _, fe := range errs {
		msg, hint := describe(fe)
		out = append(out, o.Errorf(fe.Field, hint, "%s", msg))
	}
	return out
}

// describe splits a field error into what is wrong and what to do.
func describe(fe *field.Error) (msg, hint string) {
	switch fe.Type {
	case field.ErrorTypeRequired:
		return "required value", fe.Detail
	case field.ErrorTypeNotSupported:
		return fmt.Sprintf("unsupported value %q", fmt.Sprint(fe.BadValue)),
			strings.Replace(fe.Detail, "supported values:", "use one of", 1)
	case field.ErrorTypeDuplicate:
		return fmt.Sprintf("duplicate value %q", fmt.Sprint(fe.BadValue)), "each must be unique"
	case field.ErrorTypeInvalid:
		if s, ok := fe.BadValue.(string); ok && s == "" {
			return "invalid value", fe.Detail
		}
		return fmt.Sprintf("invalid value %q", fmt.Sprint(fe.BadValue)), fe.Detail
	}
	return fe.ErrorBody(), ""
}

func docError(doc Document, key, msg, hint string) *diag.Error {
	e := &diag.Error{File: doc.File, Line: doc.Line, Col: doc.Col, Path: key, Msg: msg, Hint: hint}
	if n := Field(doc.Node, key); n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	if doc.Node.Kind != yaml.MappingNode { // the whole document is wrong
		e.Path, e.Msg, e.Hint = "", "a document must be a mapping of fields", "start it with apiVersion: and kind:"
	}
	return e
}

// File decodes every document of a file of strata objects.
func File(file string, data []byte) ([]*Object, diag.List) {
	docs, errs := Documents(file, data)
	var objs []*Object
	for _, doc := range docs {
		obj, derrs := Decode(doc)
		errs = append(errs, derrs...)
		if obj != nil && len(derrs) == 0 {
			objs = append(objs, obj)
		}
	}
	errs.Sort()
	return objs, errs
}

// ReadFile reads and decodes a file of strata objects; "-" reads stdin.
func ReadFile(name string, stdin io.Reader) ([]*Object, diag.List) {
	data, err := ReadInput(name, stdin)
	if err != nil {
		return nil, diag.List{{File: name, Msg: err.Error(), Hint: "check the file name"}}
	}
	return File(name, data)
}

// ReadInput reads a named file, or stdin for "-".
func ReadInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		if stdin == nil {
			return nil, errors.New("no standard input")
		}
		return readAll(stdin)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f)
}

// One returns the single object of kind among objs, the objects of file. Any other object, a
// second one of the kind, or none at all is an error; hint tells what the file is for.
func One(file string, objs []*Object, kind, hint string) (*Object, diag.List) {
	var (
		one  *Object
		errs diag.List
	)
	for _, o := range objs {
		switch {
		case o.Doc.Kind != kind:
			errs = append(errs, o.Errorf("kind", hint, "expected %s, found a %s", article(kind), o.Doc.Kind))
		case one != nil:
			errs = append(errs, o.Errorf("", "keep one "+kind+" per file", "a second %s", kind))
		default:
			one = o
		}
	}
	if one == nil && len(errs) == 0 {
		errs = append(errs, &diag.Error{File: file, Line: 1, Msg: "no " + kind + " found", Hint: "the file must hold a document of kind " + kind})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return one, nil
}

// article puts "a" or "an" before a kind.
func article(kind string) string {
	if kind != "" && strings.ContainsRune("AEIOU", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}
