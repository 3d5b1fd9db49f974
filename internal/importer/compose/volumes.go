package compose

import (
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"strata.dev/strata/api/v1alpha1"
)

// volumes reads volumes in short syntax (SOURCE:TARGET[:MODE]) and long syntax
// ({type, source, target, read_only}). Bind mounts become traits.hostPaths; named volumes
// become spec.volumes; anonymous volumes and tmpfs mounts are the container's own.
func (b *builder) volumes() {
	n, p := b.get("volumes")
	items, _ := b.r.list(n, p)
	for i, item := range items {
		ip := p.Index(i)
		v := b.r.resolve(item)
		switch {
		case isNull(v):
		case v.Kind == yaml.ScalarNode:
			b.shortVolume(v, ip)
		case v.Kind == yaml.MappingNode:
			b.longVolume(v, ip)
		default:
			b.r.errorf(v, ip, "write SOURCE:TARGET, or a mapping with type, source and target",
				"expected a string or a mapping, got %s", describe(v))
		}
	}
}

func (b *builder) shortVolume(n *yaml.Node, p *field.Path) {
	spec, ok := b.r.text(n, p)
	if !ok {
		return
	}
	parts := strings.Split(spec, ":")
	// A Windows source such as C:\data or C:/data holds a colon of its own.
	if len(parts) > 2 && len(parts[0]) == 1 && isLetter(parts[0][0]) &&
		(strings.HasPrefix(parts[1], `\`) || strings.HasPrefix(parts[1], "/")) {
		parts = append([]string{parts[0] + ":" + parts[1]}, parts[2:]...)
	}
	switch {
	case len(parts) == 1:
		b.note(n, p, "the anonymous volume %s is not carried over: its data lives as long as the instance; name the volume to keep it", spec)
		return
	case len(parts) > 3:
		b.r.errorf(n, p, "write SOURCE:TARGET or SOURCE:TARGET:MODE", "invalid volume %q", spec)
		return
	}
	readOnly := len(parts) == 3 && slices.Contains(strings.Split(parts[2], ","), "ro")
	b.mount(parts[0], parts[1], "", readOnly, n, p)
}

func (b *builder) longVolume(n *yaml.Node, p *field.Path) {
	f, _ := b.r.mapping(n, p)
	typ, _ := b.r.str(f.get("type"), p.Child("type"))
	source, _ := b.r.str(f.get("source"), p.Child("source"))
	target, _ := b.r.str(f.get("target"), p.Child("target"))
	readOnly := false
	if ro := f.get("read_only"); ro != nil {
		readOnly, _ = b.r.boolean(ro, p.Child("read_only"))
	}
	switch typ {
	case "", "bind", "volume", "npipe":
	case "tmpfs":
		b.note(n, p, "the tmpfs mount at %s is not carried over: its files live in the instance's own filesystem", target)
		return
	case "image", "cluster":
		b.note(n, p, "the %s mount at %s is not carried over", typ, target)
		return
	default:
		b.r.errorf(b.r.resolve(f.get("type")), p.Child("type"), "use one of bind, volume, tmpfs, npipe, image, cluster",
			"unsupported volume type %q", typ)
		return
	}
	if source == "" {
		if typ == "bind" || typ == "npipe" {
			b.r.errorf(n, p.Child("source"), "name the host path to mount", "a %s mount needs a source", typ)
			return
		}
		b.note(n, p, "the anonymous volume %s is not carried over: its data lives as long as the instance; name the volume to keep it", target)
		return
	}
	b.mount(source, target, typ, readOnly, n, p)
}

// mount records one volume with a source: a host path (typ bind or npipe, a source that is a
// path, or a top-level volume that binds a host directory) or a named volume.
func (b *builder) mount(source, target, typ string, readOnly bool, n *yaml.Node, p *field.Path) {
	if bind := b.r.bindVolumes[source]; typ != "bind" && typ != "npipe" && isVolumeName(source) && bind != nil {
		b.hostPath(bind.device, bind.node, readOnly, n, p)
		return
	}
	if typ == "bind" || typ == "npipe" || (typ == "" && !isVolumeName(source)) {
		b.hostPath(source, n, readOnly, n, p)
		return
	}
	if !isVolumeName(source) {
		b.r.errorf(n, p, "a volume name is letters, digits, '_', '.' and '-'", "invalid volume name %q", source)
		return
	}
	if !path.IsAbs(target) {
		b.r.errorf(n, p, "mount the volume at an absolute path such as /data",
			"the volume %q has no absolute target path (got %q)", source, target)
		return
	}
	name := dnsLabel(source, "volume")
	switch {
	case b.seen["volume:"+name]:
		b.r.errorf(n, p, "strata mounts a volume at one path: keep one of the mounts",
			"the volume %q is mounted twice", source)
		return
	case b.seen["mount:"+path.Clean(target)]:
		b.r.errorf(n, p, "keep one of the mounts", "two volumes are mounted at %s", target)
		return
	}
	b.seen["volume:"+name] = true
	b.seen["mount:"+path.Clean(target)] = true
	vols := b.w.Spec.Volumes
	b.from("spec.volumes["+strconv.Itoa(len(vols))+"]", n, p)
	b.w.Spec.Volumes = append(b.w.Spec.Volumes, v1alpha1.Volume{Name: name, MountPath: target})
}

// hostPath records a host file or directory the service mounts: src as written, relative
// to the directory of the file that holds at. The mount itself (n, p) gets a note, as strata
// mounts volumes, not host paths. A path strata cannot place on a Linux host (a Windows path,
// ~ without a HOME) counts as host access to paths, ungraded.
func (b *builder) hostPath(src string, at *yaml.Node, readOnly bool, n *yaml.Node, p *field.Path) {
	hp, ok := b.r.placeHostPath(src, at)
	if !ok {
		b.host[v1alpha1.HostPaths] = true
		b.note(n, p, "the host path %s is not carried over, and strata cannot tell where it is on this host: it counts as access to any host path", src)
		return
	}
	hp.ReadOnly = readOnly
	what, it := "host path", "what it holds"
	if hp.InProject {
		what, it = "project file", "the file"
	}
	b.note(n, p, "the bind mount of the %s %s is not carried over: strata mounts volumes, not host paths; ship %s in the image or a volume",
		what, hp.Path, it)
	key := "hostPath:" + hp.Path + ":" + strconv.FormatBool(readOnly)
	if b.seen[key] {
		return
	}
	b.seen[key] = true
	t := &b.w.Spec.Traits
	b.from("spec.traits.hostPaths["+strconv.Itoa(len(t.HostPaths))+"]", n, p)
	t.HostPaths = append(t.HostPaths, v1alpha1.HostPath{Path: hp.Path, ReadOnly: readOnly, InProject: hp.InProject})
}

// placeHostPath cleans a bind source written in the file that holds node at: an absolute
// path, ~ or ~/x (the HOME directory, never in the project), or a path relative to the file's
// directory. A path inside the project's directory becomes relative to it ("./conf/nginx.conf")
// with InProject set; any other path is absolute. ok is false for a path that cannot be placed.
func (r *reader) placeHostPath(src string, at *yaml.Node) (v1alpha1.HostPath, bool) {
	if src == "" || strings.ContainsRune(src, 0) || isWindowsPath(src) {
		return v1alpha1.HostPath{}, false
	}
	s := r.sourceOf(at)
	if strings.HasPrefix(src, "~") && src != "~" && !strings.HasPrefix(src, "~/") {
		return v1alpha1.HostPath{}, false // ~user: another user's home
	}
	if src == "~" || strings.HasPrefix(src, "~/") {
		home, ok := s.env.lookup("HOME")
		if !ok || !path.IsAbs(home) {
			return v1alpha1.HostPath{}, false
		}
		return v1alpha1.HostPath{Path: path.Join(home, src[1:])}, true
	}
	abs := path.Clean(src)
	if !path.IsAbs(abs) {
		dir, err := filepath.Abs(s.dir)
		if err != nil {
			return v1alpha1.HostPath{}, false
		}
		abs = path.Join(filepath.ToSlash(dir), abs)
	}
	if project := r.projectDir(); project != "" && project != "/" {
		if rel, ok := strings.CutPrefix(abs, project); ok && (rel == "" || rel[0] == '/') {
			return v1alpha1.HostPath{Path: "." + rel, InProject: true}, true
		}
	}
	return v1alpha1.HostPath{Path: abs}, true
}

// projectDir is the absolute directory of the main compose file, "" when unknown.
func (r *reader) projectDir() string {
	dir, err := filepath.Abs(r.main.dir)
	if err != nil {
		return ""
	}
	return filepath.ToSlash(dir)
}

// isWindowsPath reports whether s is a Windows path: C:\x, C:/x, \\server\share or \x.
func isWindowsPath(s string) bool {
	return strings.HasPrefix(s, `\`) || (len(s) >= 2 && isLetter(s[0]) && s[1] == ':')
}

// isVolumeName reports whether s can name a volume rather than a host path: a letter or
// digit, then letters, digits, '_', '.' and '-'. Anything else (/srv, ./data, ~/x, ${HOME}/x)
// is a path on the host.
func isVolumeName(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func isAlnum(c byte) bool { return isLetter(c) || (c >= '0' && c <= '9') }
