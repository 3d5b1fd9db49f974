package compose

import (
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
// mapping, and no apiVersion or kind.
func Detect(doc load.Document) bool {
	n := doc.Node
	if n == nil || n.Kind != yaml.MappingNode {
		return false
	}
	if load.Field(n, "apiVersion") != nil || load.Field(n, "kind") != nil {
		return false
	}
	s := load.Field(n, "services")
	for i := 0; s != nil && s.Kind == yaml.AliasNode && i < 8; i++ {
		s = s.Alias
	}
	return s != nil && s.Kind == yaml.MappingNode
}

// Import converts every service of a compose document into a Workload. Unknown compose keys
// are ignored; keys strata reads must have the right shape, else the error names their line
// and column and the service is imported without them. It returns every workload it could
// import (each defaulted and valid) and every problem it found, sorted.
func Import(doc load.Document) (inventory.Set, diag.List) {
	var set inventory.Set
	r := newReader(doc.File, doc.Line)
	if !Detect(doc) {
		r.errorf(doc.Node, nil, "a compose file is a mapping with a services: mapping and no apiVersion or kind",
			"the document is not a compose file")
		return set, r.errs
	}
	root, _ := r.mapping(doc.Node, nil)
	p := &project{volumes: map[string]bool{}}
	if n := root.get("name"); n != nil {
		p.name, _ = r.str(n, field.NewPath("name"))
	}
	r.topVolumes(root.get("volumes"), p)

	servicesPath := field.NewPath("services")
	services, _ := r.mapping(root.get("services"), servicesPath)
	names := serviceNames(services)
	for i, e := range services {
		b := newBuilder(r, p, e, names[i], servicesPath.Child(e.key))
		b.build()
		if item, ok := b.finish(); ok {
			set.Items = append(set.Items, item)
		}
	}
	r.errs.Sort()
	return set, r.errs
}

// project is what the top level of a compose file says about all its services.
type project struct {
	name string
	// volumes names the top-level volumes that bind a host directory (driver_opts o: bind).
	volumes map[string]bool
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

// topVolumes notes the top-level volumes whose driver binds a host directory.
func (r *reader) topVolumes(n *yaml.Node, p *project) {
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
		if o, ok := r.str(opts.get("o"), vp.Child("driver_opts", "o")); ok && hasOption(o, "bind", "rbind") {
			p.volumes[v.key] = true
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
