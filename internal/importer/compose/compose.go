package compose

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/inventory"
	"strata.dev/strata/internal/load"
)

// Annotations the importer sets on workloads.
const (
	// AnnotationProject holds the compose project's name (the file's top-level name:).
	AnnotationProject = "strata.dev/compose-project"
	// AnnotationBuildContext holds the build context of a service built from source.
	AnnotationBuildContext = "strata.dev/build-context"
)

// SourceKind is the Source.Kind of every imported item.
const SourceKind = "service"

// Detect reports whether a parsed YAML document is a compose file: a mapping with a services
// mapping or an include list, and no apiVersion or kind.
func Detect(doc load.Document) bool {
	n := doc.Node
	if n == nil || n.Kind != yaml.MappingNode {
		return false
	}
	if load.Field(n, "apiVersion") != nil || load.Field(n, "kind") != nil {
		return false
	}
	deref := func(s *yaml.Node) *yaml.Node {
		for i := 0; s != nil && s.Kind == yaml.AliasNode && i < 8; i++ {
			s = s.Alias
		}
		return s
	}
	if s := deref(load.Field(n, "services")); s != nil && s.Kind == yaml.MappingNode {
		return true
	}
	inc := deref(load.Field(n, "include"))
	return inc != nil && inc.Kind == yaml.SequenceNode
}

// Import converts every service of a compose document into a Workload. doc.File is the
// compose file's path: relative paths in it (env files, bind mounts) start from its
// directory ("-", standard input, from the working directory). Its variables come from
// opts.Environ, then from the .env file beside it (or opts.EnvFiles). Unknown compose keys
// are ignored; keys strata reads must have the right shape, else the error names their line
// and column and the service is imported without them. It returns every workload it could
// import (each defaulted and valid), its warnings, and every problem it found, sorted.
func Import(doc load.Document, opts Options) (inventory.Set, diag.List) {
	var set inventory.Set
	r := newReader(&source{file: doc.File, dir: dirOf(doc.File)}, doc.Line)
	if !Detect(doc) {
		r.errorf(doc.Node, nil, "a compose file is a mapping with a services: mapping (or an include: list) and no apiVersion or kind",
			"the document is not a compose file")
		return set, r.errs
	}
	r.main.env = r.projectEnv(opts, r.main.dir)
	root, _ := r.mapping(doc.Node, nil)
	p := &project{}
	if n := root.get("name"); n != nil {
		p.name, _ = r.str(n, field.NewPath("name"))
	}
	r.topVolumes(root.get("volumes"))

	servicesPath := field.NewPath("services")
	main := &composeFile{src: r.main, node: doc.Node, loaded: map[string]*composeFile{}}
	main.services, _ = r.mapping(root.get("services"), servicesPath)
	var refs []serviceRef
	defined := map[string]*composeFile{}
	for _, e := range main.services {
		refs = append(refs, serviceRef{cf: main, e: e})
		defined[e.key] = main
	}
	abs, _ := filepath.Abs(doc.File)
	for _, ref := range r.includes(main, root.get("include"), []string{abs}) {
		if cf, ok := defined[ref.e.key]; ok {
			r.errorf(ref.e.k, servicesPath.Child(ref.e.key), "rename one of them",
				"the service %q is defined in %s already", ref.e.key, cf.src.file)
			continue
		}
		defined[ref.e.key] = ref.cf
		refs = append(refs, ref)
	}
	services := make(fields, len(refs))
	for i, ref := range refs {
		services[i] = ref.e
	}
	names := serviceNames(services)
	for i, ref := range refs {
		failed := r.failed
		def := ref.node
		if def == nil {
			def = r.resolved(ref.cf, ref.e)
		}
		sp := servicesPath.Child(ref.e.key)
		r.service = sp.String() + "."
		b := newBuilder(r, p, entry{key: ref.e.key, k: ref.e.k, v: def}, names[i], sp)
		b.failed = failed // extends counts too
		b.build()
		if item, ok := b.finish(); ok {
			set.Items = append(set.Items, item)
		}
	}
	r.service = ""
	r.interpolateRest(doc.Node, nil)
	for _, cf := range r.files {
		r.interpolateRest(cf.node, nil)
	}
	r.errs.Sort()
	r.warns.Sort()
	set.Warnings = r.warns
	return set, r.errs
}

// source is one compose file of a project.
type source struct {
	file string // its name in messages
	dir  string // the directory its relative paths start from
	env  env    // the variables it is interpolated with
}

// dirOf is the directory a compose file's relative paths start from.
func dirOf(file string) string {
	if file == "" || file == "-" {
		return "."
	}
	return filepath.Dir(file)
}

// projectEnv reads the variables of the project whose directory is dir: opts.Environ, then
// opts.EnvFiles in order, or else dir's .env file when there is one.
func (r *reader) projectEnv(opts Options, dir string) env {
	process := env{environ(opts.Environ)}
	files := opts.EnvFiles
	required := true
	if len(files) == 0 {
		files, required = []string{filepath.Join(dir, ".env")}, false
	}
	return process.with(r.envFiles(process, files, required, nil, nil))
}

// envFiles reads environment files in order, each overriding the one before, interpolated
// with outer. A missing file is an error when required, at node n (or the document).
func (r *reader) envFiles(outer env, files []string, required bool, n *yaml.Node, p *field.Path) map[string]string {
	vars := map[string]string{}
	for _, f := range files {
		data, err := readFile(f)
		if err != nil {
			if required || !errors.Is(err, fs.ErrNotExist) {
				r.errorf(n, p, "check the path of the environment file", "environment file %s: %v", f, pathless(err))
			}
			continue
		}
		for _, prob := range parseEnvFile(string(data), outer, vars) {
			if prob.warning {
				r.warns = append(r.warns, envError(f, prob))
			} else {
				r.errs = append(r.errs, envError(f, prob))
			}
		}
	}
	return vars
}

// pathless drops the path from a file system error, for messages that name the file already.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// maxFileSize bounds the files a project reads besides its main document.
const maxFileSize = 16 << 20

// readFile reads a regular file of at most maxFileSize bytes.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, err
	case !fi.Mode().IsRegular():
		return nil, errors.New("not a regular file")
	case fi.Size() > maxFileSize:
		return nil, fmt.Errorf("larger than %d MiB", maxFileSize>>20)
	}
	return io.ReadAll(io.LimitReader(f, maxFileSize))
}

// interpolateRest interpolates the values of n that no service read, as compose does with
// every value of a file: an error (a required variable without a value) is reported, an
// unset variable is a warning.
func (r *reader) interpolateRest(n *yaml.Node, p *field.Path) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			r.interpolateRest(c, p)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			kp := p
			if k.Kind == yaml.ScalarNode {
				if kp == nil {
					kp = field.NewPath(k.Value)
				} else {
					kp = kp.Child(k.Value)
				}
			}
			r.interpolateRest(n.Content[i+1], kp)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			ip := p
			if ip != nil {
				ip = ip.Index(i)
			}
			r.interpolateRest(c, ip)
		}
	case yaml.ScalarNode:
		if _, done := r.done[n]; !done && strings.Contains(n.Value, "$") {
			r.textStrict(n, p, false)
		}
	}
}

// project is what the top level of a compose file says about all its services.
type project struct {
	name string
}

// bindVolume is a top-level volume that binds a host directory (driver_opts o: bind).
type bindVolume struct {
	device string     // the host directory (driver_opts device), as written
	node   *yaml.Node // the volume's definition, whose file relative devices start from
}

// serviceNames gives each service a unique DNS label. Services whose names already are DNS
// labels keep them; the others are sanitized and, on a collision, suffixed -2, -3, ... in
// file order.
func serviceNames(services fields) []string {
	names := make([]string, len(services))
	taken := map[string]bool{}
	for i, e := range services {
		if isDNSLabel(e.key) && !taken[e.key] {
			names[i] = e.key
			taken[e.key] = true
		}
	}
	for i, e := range services {
		if names[i] == "" {
			names[i] = unique(dnsLabel(e.key, "service"), taken)
		}
	}
	return names
}

// topVolumes notes the top-level volumes whose driver binds a host directory. The first
// definition of a name wins.
func (r *reader) topVolumes(n *yaml.Node) {
	path := field.NewPath("volumes")
	vols, ok := r.mapping(n, path)
	if !ok {
		return
	}
	for _, v := range vols {
		vp := path.Child(v.key)
		def, ok := r.mapping(v.v, vp)
		if !ok {
			continue
		}
		opts, ok := r.mapping(def.get("driver_opts"), vp.Child("driver_opts"))
		if !ok {
			continue
		}
		if o, ok := r.str(opts.get("o"), vp.Child("driver_opts", "o")); ok && hasOption(o, "bind", "rbind") && r.bindVolumes[v.key] == nil {
			device, _ := r.str(opts.get("device"), vp.Child("driver_opts", "device"))
			r.bindVolumes[v.key] = &bindVolume{device: device, node: r.resolve(v.v)}
		}
	}
}

// hasOption reports whether a comma-separated mount option list holds one of want.
func hasOption(opts string, want ...string) bool {
	for _, o := range strings.Split(opts, ",") {
		if slices.Contains(want, strings.TrimSpace(o)) {
			return true
		}
	}
	return false
}

// sourceOf is where a service came from.
func sourceOf(file string, key *yaml.Node, name, original string) v1alpha1.Source {
	s := v1alpha1.Source{File: file, Line: max(key.Line, 1), Format: v1alpha1.FormatCompose, Kind: SourceKind}
	if name != original {
		s.Name = original
	}
	return s
}
