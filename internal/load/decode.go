package load

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"strata.dev/strata/internal/diag"
)

// MaxNodes bounds the nodes one document may expand to, aliases included, so that a
// small file with nested aliases cannot make the decoder run out of memory.
const MaxNodes = 1 << 18

// Positions maps field paths (spec.ports[0].port) to where their values are in the file.
type Positions map[string]Pos

// Pos is a line and column, both from 1.
type Pos struct{ Line, Col int }

// Lookup returns the position of path, or of its nearest ancestor that has one.
func (ps Positions) Lookup(path string) (Pos, bool) {
	for {
		if p, ok := ps[path]; ok {
			return p, true
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return Pos{}, false
		}
		path = path[:i]
	}
}

// Strict decodes the document into out (a pointer to a struct with json tags): every field of
// the document must exist in out's type and have a value of its type. It returns the positions
// of every field it saw, for later errors about values, and all the problems it found. Fields
// with problems are left unset in out; the rest is decoded.
func Strict(doc Document, out any) (Positions, diag.List) {
	d := &decoder{file: doc.File, pos: Positions{}}
	generic := d.value(doc.Node, reflect.TypeOf(out).Elem(), nil)
	// Values that did not fit were left out, so the rest still decodes and can be
	// validated: the caller reports every problem of the document at once.
	if err := roundTrip(generic, out); err != nil && len(d.errs) == 0 {
		return d.pos, diag.List{{File: doc.File, Line: doc.Line, Col: doc.Col, Msg: err.Error()}}
	}
	return d.pos, d.errs
}

// Loose decodes the document into out, ignoring fields out's type lacks. It is for documents
// of other systems (Kubernetes objects) where strata reads only what it needs. Like Strict it
// walks the document guided by out's type, so every value that does not fit is reported at
// its own line and column with its field path, and left out while the rest decodes. Merge
// keys (<<) are expanded; values of types that decode themselves from JSON (an int-or-string,
// a time) are checked by their own decoders.
func Loose(doc Document, out any) diag.List {
	d := &decoder{file: doc.File, loose: true}
	generic := d.value(doc.Node, reflect.TypeOf(out).Elem(), nil)
	if err := roundTrip(generic, out); err != nil {
		d.errs = append(d.errs, &diag.Error{File: doc.File, Line: doc.Line, Col: doc.Col, Msg: err.Error(),
			Hint: "check the field types of this " + doc.Kind})
	}
	return d.errs
}

// Generic converts a node to plain Go values (map[string]any, []any, string, int64, float64,
// bool, nil), as JSON would decode it.
func Generic(file string, n *yaml.Node) (any, diag.List) {
	d := &decoder{file: file}
	v := d.generic(n, nil)
	return v, d.errs
}

func roundTrip(generic any, out any) error {
	b, err := json.Marshal(generic)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return json.Unmarshal(b, out)
}

type decoder struct {
	file  string
	pos   Positions
	errs  diag.List
	nodes int
	over  bool
	// loose ignores unknown fields, expands merge keys and lets types that decode
	// themselves from JSON check their values.
	loose bool
}

var (
	quantityType    = reflect.TypeOf(resource.Quantity{})
	timeType        = reflect.TypeOf(time.Time{})
	intOrStringType = reflect.TypeOf(intstr.IntOrString{})
	unmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
)

func (d *decoder) fail(n *yaml.Node, p *field.Path, msg, hint string) {
	e := &diag.Error{File: d.file, Line: n.Line, Col: n.Column, Msg: msg, Hint: hint}
	if p != nil {
		e.Path = p.String()
	}
	d.errs = append(d.errs, e)
}

// count counts k more values against the budget; false means stop.
func (d *decoder) count(n *yaml.Node, p *field.Path, k int) bool {
	d.nodes += k
	if d.nodes > MaxNodes {
		if !d.over {
			d.over = true
			d.fail(n, p, "document expands to too many values", "a document may hold at most 262144 values, aliases counted")
		}
		return false
	}
	return true
}

// enter resolves aliases and counts the node against the budget; false means stop.
func (d *decoder) enter(n *yaml.Node, p *field.Path) (*yaml.Node, bool) {
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return n, false
		}
		n = n.Alias
	}
	d.nodes++
	if d.nodes > MaxNodes {
		if !d.over {
			d.over = true
			d.fail(n, p, "document expands to too many values", "a document may hold at most 262144 values, aliases counted")
		}
		return n, false
	}
	if p != nil && d.pos != nil {
		d.pos[p.String()] = Pos{n.Line, n.Column}
	}
	return n, true
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!null":
			return "null"
		}
		return n.Value
	}
	return "a value"
}

// value converts n guided by the Go type t, reporting what does not fit.
func (d *decoder) value(n *yaml.Node, t reflect.Type, p *field.Path) any {
	n, ok := d.enter(n, p)
	if !ok {
		return nil
	}
	if isNull(n) {
		return nil
	}
	switch t {
	case quantityType:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, p, "expected a quantity, got "+kindName(n), "write a number or a Kubernetes quantity such as 500m or 2Gi")
			return nil
		}
		if _, err := resource.ParseQuantity(n.Value); err != nil {
			d.fail(n, p, fmt.Sprintf("invalid quantity %q", n.Value), "write a number or a Kubernetes quantity such as 500m, 1.5 or 2Gi")
			return nil
		}
		return n.Value
	case timeType:
		if _, err := time.Parse(time.RFC3339, n.Value); n.Kind != yaml.ScalarNode || err != nil {
			d.fail(n, p, "expected a time, got "+kindName(n), "write an RFC 3339 time such as 2026-01-02T15:04:05Z")
			return nil
		}
		return n.Value
	}
	if d.loose && t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(unmarshalerType) {
		return d.custom(n, t, p)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return d.value(n, t.Elem(), p)
	case reflect.Struct:
		return d.object(n, t, p)
	case reflect.Map:
		return d.mapping(n, t, p)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, p, "expected a list, got "+kindName(n), "write a YAML list, one item per line starting with '- '")
			return nil
		}
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			out = append(out, d.value(c, t.Elem(), p.Index(i)))
		}
		return out
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, p, "expected a string, got "+kindName(n), "")
			return nil
		}
		return n.Value
	case reflect.Bool:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
			b, err := strconv.ParseBool(strings.ToLower(n.Value))
			if err == nil {
				return b
			}
		}
		d.fail(n, p, "expected true or false, got "+kindName(n), "")
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return d.integer(n, t, p)
	case reflect.Float32, reflect.Float64:
		if n.Kind == yaml.ScalarNode && (n.Tag == "!!float" || n.Tag == "!!int") {
			if f, err := strconv.ParseFloat(n.Value, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return f
			}
		}
		d.fail(n, p, "expected a number, got "+kindName(n), "")
		return nil
	case reflect.Interface:
		return d.generic(n, p)
	}
	d.fail(n, p, "cannot decode a "+t.String(), "")
	return nil
}

func (d *decoder) integer(n *yaml.Node, t reflect.Type, p *field.Path) any {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		hint := ""
		if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
			if _, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
				hint = "remove the quotes"
			}
		}
		d.fail(n, p, "expected an integer, got "+kindName(n), hint)
		return nil
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, t.Bits())
	if err != nil {
		d.fail(n, p, fmt.Sprintf("integer %s is out of range", n.Value), fmt.Sprintf("the field holds a %d-bit integer", t.Bits()))
		return nil
	}
	return v
}

// object decodes a mapping into the fields of struct t, by their json names.
func (d *decoder) object(n *yaml.Node, t reflect.Type, p *field.Path) any {
	if n.Kind != yaml.MappingNode {
		d.fail(n, p, "expected a mapping of fields, got "+kindName(n), "")
		return nil
	}
	fields := jsonFields(t)
	pairs := n.Content
	if d.loose {
		pairs = merged(n)
		// Unknown fields are skipped without being entered: count them here, so that an
		// aliased mapping with many of them, referred to many times, stays within budget.
		if !d.count(n, p, len(pairs)/2) {
			return nil
		}
	}
	out := make(map[string]any, len(pairs)/2)
	seen := make(map[string]bool, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		k, v := pairs[i], pairs[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, p, "a field name must be a string", "")
			continue
		}
		if k.Value == "<<" {
			d.fail(k, p, "merge keys (<<) are not supported", "write the fields out")
			continue
		}
		ft, ok := fields[k.Value]
		if !ok {
			if !d.loose {
				d.fail(k, p.Child(k.Value), fmt.Sprintf("unknown field %q", k.Value), suggest(k.Value, fields))
			}
			continue
		}
		if seen[k.Value] {
			d.fail(k, p.Child(k.Value), fmt.Sprintf("field %q is given twice", k.Value), "keep one of them")
			continue
		}
		seen[k.Value] = true
		if val := d.value(v, ft, p.Child(k.Value)); val != nil {
			out[k.Value] = val
		}
	}
	return out
}

// maxMergeDepth bounds merge keys that merge mappings with merge keys of their own.
const maxMergeDepth = 8

// merged returns the key and value nodes of a mapping with its merge keys (<<: *base, or
// <<: [*a, *b]) expanded as YAML defines them: the mapping's own keys first, then each
// merged mapping's keys that are not given yet, earlier mappings winning.
func merged(n *yaml.Node) []*yaml.Node {
	if !slices.ContainsFunc(n.Content, isMergeKey) {
		return n.Content
	}
	var out []*yaml.Node
	given := map[string]bool{}
	var add func(m *yaml.Node, depth int)
	add = func(m *yaml.Node, depth int) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k := m.Content[i]
			if isMergeKey(k) || given[k.Value] {
				continue
			}
			given[k.Value] = true
			out = append(out, k, m.Content[i+1])
		}
		if depth >= maxMergeDepth {
			return
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if !isMergeKey(m.Content[i]) {
				continue
			}
			v := resolveAlias(m.Content[i+1])
			switch {
			case v == nil:
			case v.Kind == yaml.MappingNode:
				add(v, depth+1)
			case v.Kind == yaml.SequenceNode:
				for _, c := range v.Content {
					if c = resolveAlias(c); c != nil && c.Kind == yaml.MappingNode {
						add(c, depth+1)
					}
				}
			}
		}
	}
	add(n, 0)
	return out
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "!!merge" || k.Tag == "")
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxMergeDepth; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

// custom checks a value of a type that decodes itself from JSON (an int-or-string, a
// Kubernetes time) with the type's own decoder.
func (d *decoder) custom(n *yaml.Node, t reflect.Type, p *field.Path) any {
	g := d.generic(n, p)
	b, err := json.Marshal(g)
	if err == nil {
		err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b)
	}
	if err != nil {
		want := "a value of type " + t.Name()
		switch {
		case t == intOrStringType:
			want = "an integer or a string"
		case strings.HasSuffix(t.Name(), "Time"):
			want = "an RFC 3339 time such as 2026-01-02T15:04:05Z"
		}
		d.fail(n, p, "expected "+want+", got "+kindName(n), "")
		return nil
	}
	return g
}

func (d *decoder) mapping(n *yaml.Node, t reflect.Type, p *field.Path) any {
	if n.Kind != yaml.MappingNode {
		d.fail(n, p, "expected a mapping, got "+kindName(n), "write key: value pairs")
		return nil
	}
	if t.Key().Kind() != reflect.String {
		d.fail(n, p, "cannot decode a "+t.String(), "")
		return nil
	}
	out := make(map[string]any, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, p, "a key must be a string", "")
			continue
		}
		if _, dup := out[k.Value]; dup {
			d.fail(k, p.Key(k.Value), fmt.Sprintf("key %q is given twice", k.Value), "keep one of them")
			continue
		}
		val := d.value(v, t.Elem(), p.Key(k.Value))
		if val == nil && t.Elem().Kind() == reflect.String && isNull(v) {
			val = ""
		}
		out[k.Value] = val
	}
	return out
}

// generic converts a node without a target type, as JSON would decode it.
func (d *decoder) generic(n *yaml.Node, p *field.Path) any {
	n, ok := d.enter(n, p)
	if !ok {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			for k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				d.fail(k, p, "a key must be a string", "")
				continue
			}
			var child *field.Path
			if p != nil {
				child = p.Child(k.Value)
			} else {
				child = field.NewPath(k.Value)
			}
			out[k.Value] = d.generic(n.Content[i+1], child)
		}
		return out
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			out = append(out, d.generic(c, p.Index(i)))
		}
		return out
	case yaml.ScalarNode:
		return scalar(n)
	}
	return nil
}

// scalar gives a scalar its JSON type from its resolved YAML tag.
func scalar(n *yaml.Node) any {
	switch n.Tag {
	case "!!null":
		return nil
	case "!!bool":
		if b, err := strconv.ParseBool(strings.ToLower(n.Value)); err == nil {
			return b
		}
	case "!!int":
		if v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
			return v
		}
	case "!!float":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
	}
	return n.Value
}

// fieldsOf caches jsonFields: a document walks the same few struct types many times.
var fieldsOf sync.Map // reflect.Type -> map[string]reflect.Type

// jsonFields maps the json names of t's fields (inline structs flattened) to their types.
// The map is shared: callers must not change it.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldsOf.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	f := collectFields(t)
	fieldsOf.Store(t, f)
	return f
}

func collectFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && (opts == "inline" || name == "") && f.Type.Kind() == reflect.Struct {
			for k, v := range collectFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// suggest names the known field closest to an unknown one, or lists them all.
func suggest(unknown string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	best, bestDist := "", 1<<30
	for name := range fields {
		names = append(names, name)
		if dist := editDistance(strings.ToLower(unknown), strings.ToLower(name)); dist < bestDist || (dist == bestDist && name < best) {
			best, bestDist = name, dist
		}
	}
	if best != "" && bestDist <= max(2, len(unknown)/3) {
		return fmt.Sprintf("did you mean %q?", best)
	}
	sort.Strings(names)
	return "known fields: " + strings.Join(names, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
