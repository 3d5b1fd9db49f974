package compose

import (
	"cmp"
	"errors"
	"io/fs"
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
	failed int // r.failed when the service started
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
	b.failed = r.failed
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
	if b.r.failed > b.failed {
		// A value could not be interpolated (its error is reported): the service is left
		// out rather than assessed without it.
		return inventory.Item{}, false
	}
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

// environment reads env_file (files of VAR=value lines, the later winning) and then
// environment (a mapping or a list of K=V), which wins over the files.
func (b *builder) environment() {
	set := func(k, v string) {
		if b.w.Spec.Env == nil {
			b.w.Spec.Env = map[string]string{}
		}
		b.w.Spec.Env[k] = v
	}
	for _, f := range b.envFiles() {
		set(f.key, f.value)
	}
	n, p := b.get("environment")
	for _, kv := range b.r.pairs(n, p) {
		set(kv.key, kv.value)
	}
}

// envFiles reads env_file: a path or a list of paths or of {path, required, format}, each
// relative to the directory of the file that names it. A missing file is an error unless
// required is false; format raw takes values as written, without quotes or interpolation.
func (b *builder) envFiles() []pair {
	n, p := b.get("env_file")
	rn := b.r.resolve(n)
	if isNull(rn) {
		return nil
	}
	items := []*yaml.Node{rn}
	if rn.Kind == yaml.SequenceNode {
		items = rn.Content
	}
	var out []pair
	for i, item := range items {
		ip := p
		if rn.Kind == yaml.SequenceNode {
			ip = p.Index(i)
		}
		item = b.r.resolve(item)
		if isNull(item) {
			continue
		}
		name, at, required, raw := "", item, true, false
		switch item.Kind {
		case yaml.ScalarNode:
			name, _ = b.r.str(item, ip)
		case yaml.MappingNode:
			f, _ := b.r.mapping(item, ip)
			name, _ = b.r.str(f.get("path"), ip.Child("path"))
			if rq := f.get("required"); rq != nil {
				if v, ok := b.r.boolean(rq, ip.Child("required")); ok {
					required = v
				}
			}
			format, _ := b.r.str(f.get("format"), ip.Child("format"))
			raw = format == "raw"
		default:
			b.r.errorf(item, ip, "write a path, or a mapping with path and required", "expected a string or a mapping, got %s", describe(item))
			continue
		}
		if name == "" {
			continue
		}
		src := b.r.sourceOf(at)
		path := relative(src.dir, name)
		data, err := readFile(path)
		if err != nil {
			if required || !errors.Is(err, fs.ErrNotExist) {
				b.r.errorf(at, ip, "check the path, or set required: false", "env_file %s: %v", path, pathless(err))
			}
			continue
		}
		vars := map[string]string{}
		if raw {
			vars = rawEnvFile(string(data))
		} else {
			for _, prob := range parseEnvFile(string(data), src.env, vars) {
				if prob.warning {
					b.r.warns = append(b.r.warns, envError(path, prob))
				} else {
					b.r.errs = append(b.r.errs, envError(path, prob))
				}
			}
		}
		keys := make([]string, 0, len(vars))
		for k := range vars {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = append(out, pair{key: k, value: vars[k], node: at})
		}
	}
	return out
}

// rawEnvFile reads VAR=value lines as written: no quotes, escapes or interpolation; # lines
// and blank lines are skipped.
func rawEnvFile(data string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n") {
		if t := strings.TrimSpace(line); t == "" || t[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) != "" {
			vars[strings.TrimSpace(k)] = v
		}
	}
	return vars
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
