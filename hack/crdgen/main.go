// Command crdgen writes CustomResourceDefinitions (CRDs) for Go API types:
// strata's own (api/v1alpha1) and KubeVirt's (kubevirt.io/api/core/v1).
// `make generate` runs it; its output lives under deploy/crds.
//
// The schemas come from controller-tools, the library behind controller-gen,
// so they are what `controller-gen crd` would write: structural OpenAPI v3
// built from the Go types, their json tags, doc comments and kubebuilder
// markers. crdgen exists because `controller-gen crd` only turns types that
// embed metav1.TypeMeta and metav1.ObjectMeta into CRDs: strata's types carry
// strata's own TypeMeta and ObjectMeta, so controller-gen writes nothing for
// them. crdgen instead takes the kinds by name (-kinds), or every type marked
// +kubebuilder:object:root=true, and otherwise does controller-gen's work:
// the schema of the top-level metadata is reset to a plain object (the API
// server owns it) and the CRD's status is not written.
//
// Terms:
//
//   - a kind is a Go type name in PACKAGE that becomes one CRD (Workload);
//   - the group is the package's +groupName marker (strata.dev);
//   - the plural is the lower-case English plural of the kind (workloads);
//     a CRD is written to OUT/<group>_<plural>.yaml, as controller-gen does.
//
// Usage, from the directory of the Go module whose build list holds PACKAGE
// (or with -dir):
//
//	crdgen -out DIR [-kinds K1,K2] [-status K1,K2] [-max-desc N] [-allow-floats] PACKAGE
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"golang.org/x/tools/go/packages"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-tools/pkg/crd"
	crdmarkers "sigs.k8s.io/controller-tools/pkg/crd/markers"
	"sigs.k8s.io/controller-tools/pkg/loader"
	"sigs.k8s.io/controller-tools/pkg/markers"
	"sigs.k8s.io/yaml"
)

// rootMarker marks a type as a kind (a root object).
const rootMarker = "kubebuilder:object:root"

// options are crdgen's flags.
type options struct {
	dir     string   // module directory the package is loaded from
	out     string   // directory the CRDs are written to
	kinds   []string // kinds to write; empty: the types marked object:root
	status  []string // kinds given a status subresource besides the marked ones
	maxDesc int      // longest description kept; -1 keeps all
	floats  bool     // allow float fields (controller-gen's allowDangerousTypes)
	pkgPath string   // the Go package holding the types
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "crdgen:", err)
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		fmt.Fprintln(os.Stderr, "crdgen:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	var kinds, status string
	fs := flag.NewFlagSet("crdgen", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", ".", "directory of the Go module whose build list holds PACKAGE")
	fs.StringVar(&o.out, "out", "", "directory to write the CRDs to (required)")
	fs.StringVar(&kinds, "kinds", "", "comma-separated kinds to write (default: types marked +kubebuilder:object:root=true)")
	fs.StringVar(&status, "status", "", "comma-separated kinds that get a status subresource even without +kubebuilder:subresource:status")
	fs.IntVar(&o.maxDesc, "max-desc", -1, "truncate descriptions to this many characters; 0 drops them, -1 keeps them whole")
	fs.BoolVar(&o.floats, "allow-floats", false, "allow float32/float64 fields (type: number), which controller-gen refuses by default")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.out == "" || fs.NArg() != 1 {
		return o, errors.New("usage: crdgen -out DIR [-kinds K1,K2] [-status K1,K2] [-max-desc N] [-allow-floats] PACKAGE")
	}
	o.pkgPath = fs.Arg(0)
	o.kinds = splitList(kinds)
	o.status = splitList(status)
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(o options) error {
	roots, err := loader.LoadRootsWithConfig(&packages.Config{Dir: o.dir, Mode: packages.NeedModule}, o.pkgPath)
	if err != nil {
		return fmt.Errorf("load %s: %w", o.pkgPath, err)
	}
	if len(roots) != 1 {
		return fmt.Errorf("%s names %d packages; give exactly one", o.pkgPath, len(roots))
	}
	root := roots[0]
	parser, err := newParser(o.floats)
	if err != nil {
		return err
	}
	parser.NeedPackage(root)
	gv, ok := parser.GroupVersions[root]
	if !ok {
		return fmt.Errorf("%s has no +groupName marker in its package comment; add one (// +groupName=example.com)", o.pkgPath)
	}

	kinds := o.kinds
	if len(kinds) == 0 {
		kinds = rootKinds(parser, root)
	}
	if len(kinds) == 0 {
		return fmt.Errorf("%s: no kinds: mark the types with +kubebuilder:object:root=true or name them with -kinds", o.pkgPath)
	}

	var crds []apiextensionsv1.CustomResourceDefinition
	for _, kind := range kinds {
		c, err := buildCRD(parser, schema.GroupKind{Group: gv.Group, Kind: kind}, o)
		if err != nil {
			return err
		}
		crds = append(crds, c)
	}
	// Errors the parser met (unsupported types, bad markers) are attached to
	// the packages; type-checking errors of dependencies are not ours.
	if loader.PrintErrors(roots, packages.TypeError) {
		return fmt.Errorf("%s: the schema generator reported errors (above)", o.pkgPath)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil { //nolint:gosec // G301: generated files for the repository
		return err
	}
	for i := range crds {
		if err := writeCRD(o.out, &crds[i], source(root)); err != nil {
			return err
		}
	}
	return nil
}

// newParser returns a controller-tools schema parser that knows the
// kubebuilder markers, Kubernetes' well-known types and time.Time, and
// floats when allowed.
func newParser(floats bool) (*crd.Parser, error) {
	registry := &markers.Registry{}
	if err := crdmarkers.Register(registry); err != nil {
		return nil, fmt.Errorf("register kubebuilder markers: %w", err)
	}
	// object:root belongs to controller-gen's object generator; crdgen reads
	// it to find the kinds.
	if err := registry.Define(rootMarker, markers.DescribesType, false); err != nil {
		return nil, fmt.Errorf("register %s: %w", rootMarker, err)
	}
	p := &crd.Parser{
		Collector: &markers.Collector{Registry: registry},
		Checker:   &loader.TypeChecker{},
		// Floats are "dangerous" to controller-gen because not every
		// language decodes them alike; strata's statuses report measured
		// values (cores) as JSON numbers, which Go and kubectl read fine.
		AllowDangerousTypes: floats,
	}
	crd.AddKnownTypes(p)
	// strata's documents use time.Time, which encoding/json writes as an
	// RFC 3339 string, just like metav1.Time.
	p.PackageOverrides["time"] = func(p *crd.Parser, pkg *loader.Package) {
		p.Schemata[crd.TypeIdent{Name: "Time", Package: pkg}] = apiextensionsv1.JSONSchemaProps{
			Type:   "string",
			Format: "date-time",
		}
	}
	return p, nil
}

// rootKinds lists the types of pkg marked +kubebuilder:object:root=true,
// sorted, leaving out lists (their kind ends in List).
func rootKinds(p *crd.Parser, pkg *loader.Package) []string {
	var kinds []string
	for ident, info := range p.Types {
		if ident.Package != pkg || strings.HasSuffix(ident.Name, "List") {
			continue
		}
		if v, ok := info.Markers.Get(rootMarker).(bool); ok && v {
			kinds = append(kinds, ident.Name)
		}
	}
	slices.Sort(kinds)
	return kinds
}

// buildCRD generates the CRD of one kind the way `controller-gen crd` does.
func buildCRD(p *crd.Parser, gk schema.GroupKind, o options) (apiextensionsv1.CustomResourceDefinition, error) {
	var maxDesc *int
	if o.maxDesc >= 0 {
		maxDesc = &o.maxDesc
	}
	p.NeedCRDFor(gk, maxDesc)
	c, ok := p.CustomResourceDefinitions[gk]
	if !ok {
		return c, fmt.Errorf("%s has no type %s (kinds are type names)", o.pkgPath, gk.Kind)
	}
	// The API server fills the top-level metadata, apiVersion and kind: like
	// controller-gen, leave metadata's schema to it and require none of them.
	crd.FixTopLevelMetadata(c)
	for i := range c.Spec.Versions {
		if s := c.Spec.Versions[i].Schema; s != nil && s.OpenAPIV3Schema != nil {
			top := s.OpenAPIV3Schema
			top.Required = slices.DeleteFunc(top.Required, func(f string) bool {
				return f == "apiVersion" || f == "kind" || f == "metadata"
			})
		}
	}
	if slices.Contains(o.status, gk.Kind) {
		for i := range c.Spec.Versions {
			if c.Spec.Versions[i].Subresources == nil {
				c.Spec.Versions[i].Subresources = &apiextensionsv1.CustomResourceSubresources{}
			}
			c.Spec.Versions[i].Subresources.Status = &apiextensionsv1.CustomResourceSubresourceStatus{}
		}
	}
	c.Annotations = map[string]string{"controller-gen.kubebuilder.io/version": toolsVersion()}
	return c, nil
}

// source names the package and, for a dependency, its module version, for
// the header of the generated files.
func source(pkg *loader.Package) string {
	if m := pkg.Module; m != nil && !m.Main && m.Version != "" {
		return fmt.Sprintf("%s (%s %s)", pkg.PkgPath, m.Path, m.Version)
	}
	return pkg.PkgPath
}

// writeCRD writes c to dir/<group>_<plural>.yaml with a header saying where
// it came from. The CRD's status and creationTimestamp are left out, as
// controller-gen leaves them out.
func writeCRD(dir string, c *apiextensionsv1.CustomResourceDefinition, from string) error {
	raw, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode the %s CRD: %w", c.Name, err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		return err
	}
	delete(obj, "status")
	if meta, ok := obj["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp")
	}
	raw, err = yaml.Marshal(obj)
	if err != nil {
		return err
	}
	header := fmt.Sprintf("# Code generated by hack/crdgen (controller-tools %s) from %s. DO NOT EDIT.\n"+
		"# Regenerate with `make generate`.\n---\n", toolsVersion(), from)
	name := filepath.Join(dir, fmt.Sprintf("%s_%s.yaml", c.Spec.Group, c.Spec.Names.Plural))
	if err := os.WriteFile(name, append([]byte(header), raw...), 0o644); err != nil { //nolint:gosec // G306: generated files for the repository
		return err
	}
	fmt.Printf("crdgen: wrote %s\n", name)
	return nil
}

// toolsVersion is the version of controller-tools crdgen was built with.
func toolsVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "sigs.k8s.io/controller-tools" {
				return m.Version
			}
		}
	}
	return "(unknown)"
}
