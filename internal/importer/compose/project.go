package compose

import (
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"strata.dev/strata/internal/load"
)

// composeFile is one compose file of a project: the main document, a file a service extends,
// or an included file.
type composeFile struct {
	src      *source
	node     *yaml.Node // the document's root
	services fields
	// loaded caches the files this one's services extend, by path, as they share its variables.
	loaded map[string]*composeFile
}

// serviceRef is a service of the project and the file that defines it.
type serviceRef struct {
	cf *composeFile
	e  entry
	// node is the service's definition when it is merged from several files already;
	// otherwise the definition is e.v with its extends resolved.
	node *yaml.Node
}

// svcKey names a service of one file, for extends.
type svcKey struct {
	cf   *composeFile
	name string
}

// own registers every node under n as belonging to src.
func (r *reader) own(n *yaml.Node, src *source) {
	if n == nil || r.owner[n] != nil {
		return
	}
	r.owner[n] = src
	for _, c := range n.Content {
		r.own(c, src)
	}
}

// loadFile reads another compose file of the project: name is its path (as messages show
// it), dir the directory its relative paths start from, e its variables. A problem is
// reported at node at (the include or extends that names the file) and gives nil.
func (r *reader) loadFile(name, dir string, e env, at *yaml.Node, p *field.Path, what string) *composeFile {
	data, err := readFile(name)
	if err != nil {
		r.errorf(at, p, "check the path: it is relative to the directory of the file that names it",
			"%s %s: %v", what, name, pathless(err))
		return nil
	}
	docs, errs := load.Documents(name, data)
	r.errs = append(r.errs, errs...)
	if len(errs) > 0 {
		return nil
	}
	if len(docs) != 1 || docs[0].Node.Kind != yaml.MappingNode {
		r.errorf(at, p, "name a compose file: one YAML mapping with services:", "%s %s is not a compose file", what, name)
		return nil
	}
	src := &source{file: name, dir: dir, env: e}
	r.own(docs[0].Node, src)
	cf := &composeFile{src: src, node: docs[0].Node, loaded: map[string]*composeFile{}}
	root, _ := r.mapping(cf.node, nil)
	cf.services, _ = r.mapping(root.get("services"), field.NewPath("services"))
	r.files = append(r.files, cf)
	r.topVolumes(root.get("volumes"))
	return cf
}

// relative joins a path named in a file to the directory of that file, unless it is absolute.
func relative(dir, name string) string {
	if filepath.IsAbs(name) {
		return filepath.Clean(name)
	}
	return filepath.Join(dir, name)
}

// resolved returns a service's definition with its extends chain merged in, as the
// specification merges them: the base first, the service's own keys over it.
func (r *reader) resolved(cf *composeFile, e entry) *yaml.Node {
	key := svcKey{cf, e.key}
	if n, ok := r.merged[key]; ok {
		return n
	}
	sp := field.NewPath("services").Child(e.key)
	saved := r.service
	r.service = sp.String() + "."
	defer func() { r.service = saved }()

	r.merged[key] = e.v // while resolving: a cycle back here ends on the service alone
	r.chain = append(r.chain, key)
	defer func() { r.chain = r.chain[:len(r.chain)-1] }()

	body, _ := r.mapping(e.v, sp)
	ext := body.get("extends")
	if ext == nil {
		return e.v
	}
	baseCF, baseName, at := r.extendsTarget(cf, ext, sp.Child("extends"))
	if baseCF == nil {
		return e.v
	}
	var base *entry
	for i := range baseCF.services {
		if baseCF.services[i].key == baseName {
			base = &baseCF.services[i]
			break
		}
	}
	if base == nil {
		r.errorf(at, sp.Child("extends", "service"), "name a service of "+baseCF.src.file,
			"the service %q that %s extends is not in %s", baseName, e.key, baseCF.src.file)
		return e.v
	}
	for i, k := range r.chain {
		if k == (svcKey{baseCF, baseName}) {
			names := make([]string, 0, len(r.chain)-i+1)
			for _, c := range append(slices.Clone(r.chain[i:]), k) {
				names = append(names, r.serviceName(c))
			}
			r.errorf(at, sp.Child("extends"), "remove one extends of the cycle",
				"extends makes a cycle: %s", strings.Join(names, " -> "))
			return e.v
		}
	}
	merged := r.mergeNodes(r.resolved(baseCF, *base), e.v, "", sp)
	r.merged[key] = merged
	return merged
}

// serviceName names a service in messages: by its name in the main file, else FILE:NAME.
func (r *reader) serviceName(k svcKey) string {
	if k.cf.src == r.main {
		return k.name
	}
	return k.cf.src.file + ":" + k.name
}

// extendsTarget reads extends (a service name, or a mapping with service and an optional file)
// and returns the file and name of the base service, and the node to report problems at.
func (r *reader) extendsTarget(cf *composeFile, n *yaml.Node, p *field.Path) (*composeFile, string, *yaml.Node) {
	rn := r.resolve(n)
	if rn != nil && rn.Kind == yaml.ScalarNode {
		name, at := r.strAt(rn, p)
		if at == nil || name == "" {
			r.errorf(rn, p, "write extends: {service: NAME, file: FILE}", "extends names no service")
			return nil, "", nil
		}
		return cf, name, at
	}
	ext, ok := r.mapping(rn, p)
	if !ok {
		return nil, "", nil
	}
	name, at := r.strAt(ext.get("service"), p.Child("service"))
	if at == nil || name == "" {
		r.errorf(rn, p.Child("service"), "write extends: {service: NAME, file: FILE}", "extends names no service")
		return nil, "", nil
	}
	file, fat := r.strAt(ext.get("file"), p.Child("file"))
	if fat == nil || file == "" {
		return cf, name, at
	}
	path := relative(filepath.Dir(cf.src.file), file)
	if cf.src.file == "-" || cf.src.file == "" {
		path = relative(".", file)
	}
	base, ok := cf.loaded[path]
	if !ok {
		base = r.loadFile(path, filepath.Dir(path), cf.src.env, fat, p.Child("file"), "the extended file")
		if base != nil {
			base.loaded = cf.loaded // files extending each other share their variables
		}
		cf.loaded[path] = base
	}
	if base == nil {
		return nil, "", nil
	}
	return base, name, at
}

// includes reads the include list of file cf: each entry a path, or a mapping with path (one
// file or a list merged in order), project_directory and env_file. Included files get their
// own project directory and variables (their env files, or the .env of their project
// directory), which cf's variables override; their services join the project.
func (r *reader) includes(cf *composeFile, n *yaml.Node, stack []string) []serviceRef {
	p := field.NewPath("include")
	saved := r.service
	r.service = ""
	defer func() { r.service = saved }()
	items, _ := r.list(n, p)
	var refs []serviceRef
	for i, item := range items {
		ip := p.Index(i)
		paths, projectDir, envFiles, at := r.includeEntry(cf, item, ip)
		if len(paths) == 0 {
			continue
		}
		if projectDir == "" {
			projectDir = filepath.Dir(paths[0])
		}
		required := len(envFiles) > 0
		if !required {
			envFiles = []string{filepath.Join(projectDir, ".env")}
		}
		e := cf.src.env.with(r.envFiles(cf.src.env, envFiles, required, at, ip))
		var files []*composeFile
		for _, path := range paths {
			abs, _ := filepath.Abs(path)
			if cycle := indexOf(stack, abs); cycle >= 0 {
				r.errorf(at, ip, "remove one include of the cycle", "include makes a cycle: %s",
					strings.Join(append(stack[cycle:], abs), " -> "))
				continue
			}
			inc := r.loadFile(path, projectDir, e, at, ip, "the included file")
			if inc == nil {
				continue
			}
			files = append(files, inc)
			root, _ := r.mapping(inc.node, nil)
			refs = append(refs, r.includes(inc, root.get("include"), append(stack[:len(stack):len(stack)], abs))...)
		}
		refs = append(refs, r.mergeFiles(files)...)
	}
	return refs
}

// includeEntry reads one include: the files, the project directory and the env files, each
// relative to the directory of the including file.
func (r *reader) includeEntry(cf *composeFile, item *yaml.Node, p *field.Path) (paths []string, projectDir string, envFiles []string, at *yaml.Node) {
	dir := filepath.Dir(cf.src.file)
	if cf.src.file == "-" || cf.src.file == "" {
		dir = "."
	}
	rn := r.resolve(item)
	if rn == nil || isNull(rn) {
		return nil, "", nil, nil
	}
	list := func(n *yaml.Node, p *field.Path) []string {
		words, _ := r.stringList(n, p)
		out := make([]string, 0, len(words))
		for _, w := range words {
			if w != "" {
				out = append(out, relative(dir, w))
			}
		}
		return out
	}
	if rn.Kind == yaml.ScalarNode {
		return list(rn, p), "", nil, rn
	}
	f, ok := r.mapping(rn, p)
	if !ok {
		return nil, "", nil, nil
	}
	paths = list(f.get("path"), p.Child("path"))
	if len(paths) == 0 {
		r.errorf(rn, p.Child("path"), "write the path of the compose file to include", "the include names no file")
	}
	if s, ok := r.str(f.get("project_directory"), p.Child("project_directory")); ok && s != "" {
		projectDir = relative(dir, s)
	}
	return paths, projectDir, list(f.get("env_file"), p.Child("env_file")), rn
}

// stringList reads a string or a list of strings (not split into words).
func (r *reader) stringList(n *yaml.Node, p *field.Path) ([]string, bool) {
	rn := r.resolve(n)
	if isNull(rn) {
		return nil, true
	}
	if rn.Kind == yaml.ScalarNode {
		s, ok := r.str(rn, p)
		return []string{s}, ok
	}
	items, ok := r.list(rn, p)
	var out []string
	for i, item := range items {
		if s, ok := r.str(item, p.Index(i)); ok {
			out = append(out, s)
		}
	}
	return out, ok
}

// mergeFiles returns the services of files merged in order, as an include of several files
// merges them: a service of a later file merges over the same service of an earlier one.
func (r *reader) mergeFiles(files []*composeFile) []serviceRef {
	var refs []serviceRef
	at := map[string]int{}
	for _, cf := range files {
		for _, e := range cf.services {
			i, ok := at[e.key]
			if !ok {
				at[e.key] = len(refs)
				refs = append(refs, serviceRef{cf: cf, e: e})
				continue
			}
			prev := refs[i]
			base := prev.node
			if base == nil {
				base = r.resolved(prev.cf, prev.e)
			}
			sp := field.NewPath("services").Child(e.key)
			refs[i].node = r.mergeNodes(base, r.resolved(cf, e), "", sp)
		}
	}
	return refs
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
