package compose

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/inventory"
)

// builder turns one service into a Workload.
type builder struct {
	r        *reader
	proj     *project
	key      *yaml.Node // the service's key, where its Source points
	original string     // the service's name in the file
	p        *field.Path
	f        fields // the service's keys
	dep      fields // the keys of its deploy:
	w        v1alpha1.Workload
	// origins maps workload field paths (spec.ports[2]) to the compose values they came from,
	// to place problems found by validation.
	origins map[string]origin
	host    map[v1alpha1.HostAccess]bool
	// seen holds what is listed already (kind:value), so that lists stay free of duplicates
	// in linear time; portAt maps port/protocol to its index in spec.ports.
	seen   map[string]bool
	portAt map[string]int
	notes  []inventory.Note
}

// origin is a compose value: its node and key path.
type origin struct {
	n *yaml.Node
	p *field.Path
}

func newBuilder(r *reader, proj *project, e entry, name string, p *field.Path) *builder {
	b := &builder{
		r: r, proj: proj, key: e.k, original: e.key, p: p,
		origins: map[string]origin{"": {e.k, p}},
		host:    map[v1alpha1.HostAccess]bool{},
		seen:    map[string]bool{},
		portAt:  map[string]int{},
	}
	b.f, _ = r.mapping(e.v, p)
	b.dep, _ = r.mapping(b.f.get("deploy"), p.Child("deploy"))
	b.w.Metadata.Name = name
	return b
}

// get returns the value node of a key of the service and the key's path.
func (b *builder) get(key string) (*yaml.Node, *field.Path) {
	return b.f.get(key), b.p.Child(key)
}

// from notes that a workload field came from a compose value.
func (b *builder) from(workloadPath string, n *yaml.Node, p *field.Path) {
	b.origins[workloadPath] = origin{n, p}
}

// origin finds the compose value a workload field came from, or the nearest one that an
// enclosing field came from.
func (b *builder) origin(path string) origin {
	for {
		if o, ok := b.origins[path]; ok {
			return o
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return b.origins[""]
		}
		path = path[:i]
	}
}

// annotate sets an annotation on the workload.
func (b *builder) annotate(key, value string) {
	if b.w.Metadata.Annotations == nil {
		b.w.Metadata.Annotations = map[string]string{}
	}
	b.w.Metadata.Annotations[key] = value
}

// build reads every key strata uses. Labels come after runtime: an explicit
// strata.dev/isolation label wins.
func (b *builder) build() {
	b.image()
	b.command()
	b.environment()
	b.restart()
	b.traits()
	b.runtime()
	b.volumes()
	b.deploy()
	b.ports()
	b.health()
	b.labels()
	b.networks()
	b.unexpressedKeys()
}

// finish defaults and validates the workload. A workload that still does not validate is
// reported and left out.
func (b *builder) finish() (inventory.Item, bool) {
	w := &b.w
	if b.proj.name != "" {
		b.annotate(AnnotationProject, b.proj.name)
	}
	for _, h := range []v1alpha1.HostAccess{v1alpha1.HostNetwork, v1alpha1.HostPID, v1alpha1.HostIPC,
		v1alpha1.HostUser, v1alpha1.HostUTS, v1alpha1.HostCgroup, v1alpha1.HostDevices, v1alpha1.HostPaths} {
		if b.host[h] {
			w.Spec.Traits.HostAccess = append(w.Spec.Traits.HostAccess, h)
		}
	}
	if t, ok := w.Spec.Isolation.Tier(); ok && t != v1alpha1.TierVM && w.Spec.Image == "" {
		o := b.origin("spec.isolation")
		b.r.errorf(o.n, o.p, "give the service an image, or ask for the vm tier",
			"the %s tier runs an image, and the service has none", t)
		w.Spec.Isolation = ""
	}
	w.SetDefaults()
	if errs := v1alpha1.ValidateWorkload(w); len(errs) > 0 {
		for _, fe := range errs {
			o := b.origin(fe.Field)
			b.r.errorf(o.n, o.p, "", "the service cannot be imported: %s: %s", fe.Field, fe.ErrorBody())
		}
		return inventory.Item{}, false
	}
	// Notes in the order of the file; those placed in another file (line 0) last.
	slices.SortStableFunc(b.notes, func(x, y inventory.Note) int {
		return cmp.Compare(noteOrder(x), noteOrder(y))
	})
	return inventory.Item{Workload: *w, Source: sourceOf(b.r.sourceOf(b.key).file, b.key, w.Metadata.Name, b.original),
		Notes: b.notes}, true
}

func noteOrder(n inventory.Note) int {
	if n.Line == 0 {
		return math.MaxInt
	}
	return n.Line
}

// image reads image and build.
func (b *builder) image() {
	if n, p := b.get("image"); n != nil {
		if s, ok := b.r.str(n, p); ok {
			b.w.Spec.Image = s
			b.from("spec.image", n, p)
		}
	}
	n, p := b.get("build")
	n = b.r.resolve(n)
	if isNull(n) {
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if s, ok := b.r.text(n, p); ok {
			b.annotate(AnnotationBuildContext, s)
		}
	case yaml.MappingNode:
		build, _ := b.r.mapping(n, p)
		context := "."
		if s, ok := b.r.str(build.get("context"), p.Child("context")); ok && s != "" {
			context = s
		}
		b.annotate(AnnotationBuildContext, context)
	default:
		b.r.errorf(n, p, "write the build context directory, or a mapping with context:",
			"expected a string or a mapping, got %s", describe(n))
		return
	}
	if b.w.Spec.Image == "" {
		b.note(n, p, "the service is built from source (build context %s) and names no image: build it, push it to a registry strata pulls from, and set spec.image",
			b.w.Metadata.Annotations[AnnotationBuildContext])
	}
}

// command reads entrypoint and command: with an entrypoint, the command runs as its arguments.
func (b *builder) command() {
	n, p := b.get("command")
	cmd, _ := b.r.strOrList(n, p)
	en, ep := b.get("entrypoint")
	entry, hasEntry := b.r.strOrList(en, ep)
	if hasEntry {
		cmd = append(entry, cmd...)
	}
	if len(cmd) > 0 {
		b.w.Spec.Command = cmd
	}
}

// environment reads environment as a mapping or a list of K=V.
func (b *builder) environment() {
	n, p := b.get("environment")
	for _, kv := range b.r.pairs(n, p) {
		if b.w.Spec.Env == nil {
			b.w.Spec.Env = map[string]string{}
		}
		b.w.Spec.Env[kv.key] = kv.value
	}
}

// restart reads restart, or else deploy.restart_policy.condition.
func (b *builder) restart() {
	if n, p := b.get("restart"); n != nil {
		s, at := b.r.strAt(n, p)
		if at == nil {
			return
		}
		if policy, ok := restartPolicy(s); ok {
			b.w.Spec.RestartPolicy = policy
			return
		}
		b.r.errorf(at, p, "use one of no, always, on-failure[:N], unless-stopped",
			"unsupported restart policy %q", s)
		return
	}
	rp := b.p.Child("deploy", "restart_policy")
	policy, ok := b.r.mapping(b.dep.get("restart_policy"), rp)
	if !ok {
		return
	}
	s, at := b.r.strAt(policy.get("condition"), rp.Child("condition"))
	if at == nil {
		return
	}
	switch s {
	case "any":
		b.w.Spec.RestartPolicy = v1alpha1.RestartAlways
	case "on-failure":
		b.w.Spec.RestartPolicy = v1alpha1.RestartOnFailure
	case "none":
		b.w.Spec.RestartPolicy = v1alpha1.RestartNever
	default:
		b.r.errorf(at, rp.Child("condition"), "use one of none, on-failure, any",
			"unsupported restart condition %q", s)
	}
}

// restartPolicy maps a compose restart value to a restart policy.
func restartPolicy(s string) (v1alpha1.RestartPolicy, bool) {
	switch s {
	case "always", "unless-stopped":
		return v1alpha1.RestartAlways, true
	case "no", "false":
		return v1alpha1.RestartNever, true
	case "on-failure":
		return v1alpha1.RestartOnFailure, true
	}
	if n, ok := strings.CutPrefix(s, "on-failure:"); ok {
		if _, err := strconv.ParseUint(n, 10, 31); err == nil {
			return v1alpha1.RestartOnFailure, true
		}
	}
	return "", false
}
