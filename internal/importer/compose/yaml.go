package compose

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"strata.dev/strata/internal/diag"
)

// maxNodes bounds the nodes one document may expand to while it is read, aliases counted, so
// that a small file whose aliases nest cannot keep the importer busy for long.
const maxNodes = 1 << 20

// reader walks the nodes of a compose project (its main document and the files it extends or
// includes) and collects the errors and warnings it finds.
type reader struct {
	main  *source // the main document's file
	line  int     // the main document's line, for errors about a node without one
	errs  diag.List
	warns diag.List
	left  int // nodes that may still be visited
	over  bool
	// owner maps the nodes of every other file (and the nodes made by merging) to their
	// file; a node that is not in it belongs to the main document.
	owner map[*yaml.Node]*source
	// done holds the interpolated value of every scalar read so far.
	done map[*yaml.Node]*value
	// service is the path of the service being read ("services.web."); empty outside one.
	service string
	// bindVolumes are the project's top-level volumes that bind a host directory, by name.
	bindVolumes map[string]*bindVolume
	// files are the project's files besides the main document.
	files []*composeFile
	// merged holds each service's definition with its extends chain merged in; chain is the
	// chain being resolved, to find cycles.
	merged map[svcKey]*yaml.Node
	chain  []svcKey
	// reported holds the problems reported, as text.
	reported map[string]bool
	// failed counts the values that could not be interpolated: a service with one is left
	// out, as compose would not run it either.
	failed int
}

// value is one interpolated scalar and which of its problems were reported.
type value struct {
	interpolated
	reported, strict bool
}

func newReader(main *source, line int) *reader {
	return &reader{main: main, line: max(line, 1), left: maxNodes,
		owner: map[*yaml.Node]*source{}, done: map[*yaml.Node]*value{}, bindVolumes: map[string]*bindVolume{},
		merged: map[svcKey]*yaml.Node{}, reported: map[string]bool{}}
}

// sourceOf returns the file node n belongs to.
func (r *reader) sourceOf(n *yaml.Node) *source {
	if s, ok := r.owner[n]; ok {
		return s
	}
	return r.main
}

// errorf records an error at node n (or at the document when n has no position). A value
// read twice (a base service merged into two others) reports its problems once.
func (r *reader) errorf(n *yaml.Node, p *field.Path, hint, format string, args ...any) {
	if e := r.problem(n, p, hint, format, args...); !r.reported[e.Error()] {
		r.reported[e.Error()] = true
		r.errs = append(r.errs, e)
	}
}

// warnf records a warning at node n: a problem that does not keep the service out.
func (r *reader) warnf(n *yaml.Node, p *field.Path, hint, format string, args ...any) {
	if e := r.problem(n, p, hint, format, args...); !r.reported[e.Error()] {
		r.reported[e.Error()] = true
		r.warns = append(r.warns, e)
	}
}

func (r *reader) problem(n *yaml.Node, p *field.Path, hint, format string, args ...any) *diag.Error {
	e := &diag.Error{File: r.main.file, Line: r.line, Msg: fmt.Sprintf(format, args...), Hint: hint}
	if n != nil && n.Line > 0 {
		e.File, e.Line, e.Col = r.sourceOf(n).file, n.Line, n.Column
	}
	if p != nil {
		e.Path = p.String()
	}
	return e
}

// text returns the interpolated value of scalar n, read at path p. A required variable
// without a value or a malformed reference is an error; a variable that is not set becomes
// an empty string, which is an error in a field that bears on isolation (see isolating) and
// a warning elsewhere. ok is false after an error: the field is left out.
func (r *reader) text(n *yaml.Node, p *field.Path) (string, bool) {
	if !strings.Contains(n.Value, "$") {
		return n.Value, true
	}
	return r.textStrict(n, p, r.isolating(p))
}

// textStrict is text with the choice between error and warning made by the caller. Every
// value it cannot interpolate counts in r.failed.
func (r *reader) textStrict(n *yaml.Node, p *field.Path, strict bool) (string, bool) {
	if !strings.Contains(n.Value, "$") {
		return n.Value, true
	}
	v := r.done[n]
	if v == nil {
		v = &value{interpolated: interpolate(n.Value, r.sourceOf(n).env.lookup)}
		r.done[n] = v
	}
	switch {
	case v.err != nil:
		if !v.reported {
			v.reported = true
			r.errorf(n, p, v.err.hint, "%s", v.err.msg)
		}
		r.failed++
		return "", false
	case len(v.unset) == 0:
		return v.value, true
	case strict:
		if !v.strict {
			v.strict, v.reported = true, true
			r.errorf(n, p, "set it in the environment or in the project's .env file, or give a default with ${NAME:-value}",
				"variable %s is not set, and this field decides how the service is isolated", strings.Join(v.unset, ", "))
		}
		r.failed++
		return "", false
	}
	if !v.reported {
		v.reported = true
		r.warnf(n, p, "set it in the environment or in the project's .env file, or give a default with ${NAME:-value}",
			"variable %s is not set: an empty string takes its place", strings.Join(v.unset, ", "))
	}
	return v.value, true
}

// isolatingKeys are the service keys whose values decide how a service must be isolated: an
// unset variable in them is an error rather than a warning.
var isolatingKeys = map[string]bool{
	"privileged": true, "cap_add": true, "network_mode": true, "pid": true, "ipc": true,
	"userns_mode": true, "uts": true, "cgroup": true, "volumes": true, "devices": true,
	"security_opt": true, "sysctls": true, "image": true, "runtime": true, "platform": true,
	"extends": true,
}

// isolating reports whether path p (in the service being read, or at the top level) names a
// value that bears on isolation: a key of isolatingKeys, a strata.dev/ label, a top-level
// volume's definition (it may bind a host directory) or an include.
func (r *reader) isolating(p *field.Path) bool {
	if p == nil {
		return false
	}
	s := p.String()
	if r.service == "" {
		return strings.HasPrefix(s, "volumes.") || strings.HasPrefix(s, "include")
	}
	rest, ok := strings.CutPrefix(s, r.service)
	if !ok {
		return false
	}
	key := rest
	if i := strings.IndexAny(rest, ".["); i >= 0 {
		key = rest[:i]
	}
	switch key {
	case "labels":
		return strings.HasPrefix(rest, "labels["+labelPrefix)
	case "deploy":
		return strings.HasPrefix(rest, "deploy.labels["+labelPrefix)
	}
	return isolatingKeys[key]
}

// resolve follows aliases and counts n against the document's budget. It returns nil for a
// missing node, a dangling alias, or when the budget is spent.
func (r *reader) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i == 8 {
			return nil
		}
		n = n.Alias
	}
	if n == nil || !r.spend(n) {
		return nil
	}
	return n
}

// spend counts one value read at n against the document's budget; false means stop.
func (r *reader) spend(n *yaml.Node) bool {
	if r.left--; r.left >= 0 {
		return true
	}
	if !r.over {
		r.over = true
		r.errorf(n, nil, "a compose file may hold at most a million values, aliases and port ranges counted",
			"the document expands to too many values")
	}
	return false
}

// isNull reports whether n is missing or a null scalar (an empty value counts).
func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what a node holds, for messages such as "expected a list, got ...".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return strconv.Quote(n.Value)
		case "!!null":
			return "null"
		}
		return n.Value
	}
	return "a value"
}

// entry is one key of a mapping and its value node (unresolved).
type entry struct {
	key  string
	k, v *yaml.Node
}

// fields are the keys of a mapping in order, merge keys resolved.
type fields []entry

// get returns the value node of key, or nil.
func (fs fields) get(key string) *yaml.Node {
	for _, e := range fs {
		if e.key == key {
			return e.v
		}
	}
	return nil
}

// mapping reads n as a mapping with its merge keys (<<) resolved: the mapping's own keys come
// first and win; merged mappings follow in order, earlier ones winning over later ones, as the
// YAML merge key type has it. ok is false (and an error recorded) when n is not a mapping; a
// null n is an empty mapping.
func (r *reader) mapping(n *yaml.Node, p *field.Path) (fs fields, ok bool) {
	n = r.resolve(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		r.errorf(n, p, "write key: value pairs", "expected a mapping, got %s", describe(n))
		return nil, false
	}
	m := &merger{r: r, p: p, seen: map[string]bool{}, visited: map[*yaml.Node]bool{}}
	m.collect(n, true)
	return m.out, true
}

type merger struct {
	r       *reader
	p       *field.Path
	out     fields
	seen    map[string]bool
	visited map[*yaml.Node]bool
}

// collect adds the keys of mapping n that are not yet seen, then those of its merges.
// explicit is true for the mapping being read, whose problems are reported; merged mappings
// are reported when read on their own. A mapping merged twice adds nothing the second time,
// which also ends cycles.
func (m *merger) collect(n *yaml.Node, explicit bool) {
	if m.visited[n] {
		return
	}
	m.visited[n] = true
	var merges []*yaml.Node
	own := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := m.r.resolve(n.Content[i])
		if k == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			if explicit {
				m.r.errorf(k, m.p, "", "a key must be a string, got %s", describe(k))
			}
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, n.Content[i+1])
			continue
		}
		if own[k.Value] && explicit {
			m.r.errorf(k, m.p.Child(k.Value), "keep one of them", "key %q is given twice", k.Value)
		}
		own[k.Value] = true
		if m.seen[k.Value] {
			continue
		}
		m.seen[k.Value] = true
		m.out = append(m.out, entry{key: k.Value, k: k, v: n.Content[i+1]})
	}
	for _, v := range merges {
		v = m.r.resolve(v)
		switch {
		case v == nil:
		case v.Kind == yaml.MappingNode:
			m.collect(v, false)
		case v.Kind == yaml.SequenceNode:
			for _, item := range v.Content {
				item = m.r.resolve(item)
				if item == nil {
					continue
				}
				if item.Kind != yaml.MappingNode {
					m.mergeError(item)
					continue
				}
				m.collect(item, false)
			}
		default:
			m.mergeError(v)
		}
	}
}

func (m *merger) mergeError(n *yaml.Node) {
	m.r.errorf(n, m.p, "merge an alias of a mapping (<<: *base) or a list of them",
		"a merge key (<<) takes a mapping or a list of mappings, got %s", describe(n))
}

// list reads n as a list of (unresolved) nodes; null is an empty list.
func (r *reader) list(n *yaml.Node, p *field.Path) ([]*yaml.Node, bool) {
	n = r.resolve(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		r.errorf(n, p, "write a YAML list, one item per line starting with '- '", "expected a list, got %s", describe(n))
		return nil, false
	}
	return n.Content, true
}

// scalar returns the resolved node when n is a scalar that is not null. A null gives nil and
// no error; anything else is reported as not being a `what`.
func (r *reader) scalar(n *yaml.Node, p *field.Path, what, hint string) *yaml.Node {
	n = r.resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		r.errorf(n, p, hint, "expected %s, got %s", what, describe(n))
		return nil
	}
	return n
}

// str returns the interpolated text of a scalar; ok is false for null or a wrong shape.
func (r *reader) str(n *yaml.Node, p *field.Path) (string, bool) {
	s, at := r.strAt(n, p)
	return s, at != nil
}

// strAt is str that also returns the scalar's node, for errors about its value; the node is
// nil when there is no string.
func (r *reader) strAt(n *yaml.Node, p *field.Path) (string, *yaml.Node) {
	s := r.scalar(n, p, "a string", "")
	if s == nil {
		return "", nil
	}
	v, ok := r.text(s, p)
	if !ok {
		return "", nil
	}
	return v, s
}

// strOrList reads a value given as a string or a list of strings; a string is split like a
// shell would.
func (r *reader) strOrList(n *yaml.Node, p *field.Path) ([]string, bool) {
	n = r.resolve(n)
	if isNull(n) {
		return nil, false
	}
	switch n.Kind {
	case yaml.ScalarNode:
		text, ok := r.text(n, p)
		if !ok {
			return nil, false
		}
		words, err := splitShell(text)
		if err != nil {
			r.errorf(n, p, "close the quote, or give the words as a list", "%v", err)
			return nil, false
		}
		return words, true
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for i, item := range n.Content {
			if s, ok := r.str(item, p.Index(i)); ok {
				out = append(out, s)
			}
		}
		return out, true
	}
	r.errorf(n, p, "write a string or a list of strings", "expected a string or a list, got %s", describe(n))
	return nil, false
}

// integer reads a whole number between lo and hi. A quoted number, or one that comes from
// interpolation, counts.
func (r *reader) integer(n *yaml.Node, p *field.Path, lo, hi int64) (int64, bool) {
	s := r.scalar(n, p, "an integer", "")
	if s == nil {
		return 0, false
	}
	text, ok := r.text(s, p)
	if !ok {
		return 0, false
	}
	text = strings.ReplaceAll(strings.TrimSpace(text), "_", "")
	if text == "" && strings.Contains(s.Value, "$") {
		return 0, false // an unset variable left it empty, with a warning
	}
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		r.errorf(s, p, "", "expected an integer, got %s", describe(s))
		return 0, false
	}
	if v < lo || v > hi {
		r.errorf(s, p, "", "%d is out of range: it must be between %d and %d", v, lo, hi)
		return 0, false
	}
	return v, true
}

// boolean reads true or false (yes and no count too, as compose accepts them).
func (r *reader) boolean(n *yaml.Node, p *field.Path) (bool, bool) {
	s := r.scalar(n, p, "true or false", "")
	if s == nil {
		return false, false
	}
	text, ok := r.text(s, p)
	if !ok {
		return false, false
	}
	switch strings.ToLower(strings.TrimSpace(text)) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	r.errorf(s, p, "write true or false", "expected true or false, got %s", describe(s))
	return false, false
}

// pair is one key and value of a mapping, or one "key=value" item of a list.
type pair struct {
	key, value string
	node       *yaml.Node // the key (mapping) or the item (list), for errors
}

// pairs reads a mapping of scalars or a list of "key=value" strings, as compose accepts for
// environment, labels and sysctls. A list item without '=' has an empty value, as does a null.
func (r *reader) pairs(n *yaml.Node, p *field.Path) []pair {
	rn := r.resolve(n)
	if isNull(rn) {
		return nil
	}
	var out []pair
	switch rn.Kind {
	case yaml.MappingNode:
		fs, _ := r.mapping(rn, p)
		for _, e := range fs {
			v := r.resolve(e.v)
			if isNull(v) {
				out = append(out, pair{key: e.key, node: e.k})
				continue
			}
			if v.Kind != yaml.ScalarNode {
				r.errorf(v, p.Key(e.key), "write a string, a number or a boolean", "expected a value, got %s", describe(v))
				continue
			}
			text, ok := r.text(v, p.Key(e.key))
			if !ok {
				continue
			}
			out = append(out, pair{key: e.key, value: text, node: e.k})
		}
	case yaml.SequenceNode:
		for i, item := range rn.Content {
			s := r.scalar(item, p.Index(i), "a key=value string", "write items such as KEY=value")
			if s == nil {
				continue
			}
			// The key as written tells whether the item bears on isolation (a strata label).
			text, ok := s.Value, true
			if strings.Contains(s.Value, "$") {
				raw, _, _ := strings.Cut(s.Value, "=")
				text, ok = r.textStrict(s, p.Index(i), r.isolating(p.Index(i)) || r.isolating(p.Key(raw)))
			}
			if !ok {
				continue
			}
			k, v, _ := strings.Cut(text, "=")
			if k == "" {
				r.errorf(s, p.Index(i), "write items such as KEY=value", "the item %s has no key", describe(s))
				continue
			}
			out = append(out, pair{key: k, value: v, node: s})
		}
	default:
		r.errorf(rn, p, "write a mapping of key: value, or a list of key=value", "expected a mapping or a list, got %s", describe(rn))
	}
	return out
}
