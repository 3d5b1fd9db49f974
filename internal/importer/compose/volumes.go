package compose

import (
	"path"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"strata.dev/strata/api/v1alpha1"
)

// volumes reads volumes in short syntax (SOURCE:TARGET[:MODE]) and long syntax
// ({type, source, target}). Bind mounts reach into the host; named volumes become
// spec.volumes; anonymous volumes and tmpfs mounts are the container's own.
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
		return // an anonymous volume: TARGET only
	case len(parts) > 3:
		b.r.errorf(n, p, "write SOURCE:TARGET or SOURCE:TARGET:MODE", "invalid volume %q", spec)
		return
	}
	b.mount(parts[0], parts[1], "", n, p)
}

func (b *builder) longVolume(n *yaml.Node, p *field.Path) {
	f, _ := b.r.mapping(n, p)
	typ, _ := b.r.str(f.get("type"), p.Child("type"))
	source, _ := b.r.str(f.get("source"), p.Child("source"))
	target, _ := b.r.str(f.get("target"), p.Child("target"))
	switch typ {
	case "", "bind", "volume", "npipe":
	case "tmpfs", "image", "cluster":
		return
	default:
		b.r.errorf(b.r.resolve(f.get("type")), p.Child("type"), "use one of bind, volume, tmpfs, npipe, image, cluster",
			"unsupported volume type %q", typ)
		return
	}
	if source == "" {
		if typ == "bind" || typ == "npipe" {
			b.r.errorf(n, p.Child("source"), "name the host path to mount", "a %s mount needs a source", typ)
		}
		return // an anonymous volume
	}
	b.mount(source, target, typ, n, p)
}

// mount records one volume with a source: a host path (typ bind or npipe, a source that is a
// path, or a top-level volume that binds a host directory) or a named volume.
func (b *builder) mount(source, target, typ string, n *yaml.Node, p *field.Path) {
	if typ == "bind" || typ == "npipe" || (typ == "" && !isVolumeName(source)) || b.proj.volumes[source] {
		b.host[v1alpha1.HostPaths] = true
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
