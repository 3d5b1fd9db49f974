package place

import (
	"fmt"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"strata.dev/strata/api/v1alpha1"
)

// ZoneLabel is the host label that spread: zone spreads over.
const ZoneLabel = "zone"

// host is one machine of the fleet, pools expanded.
type host struct {
	name   string
	cap    vec
	labels map[string]string // shared with the input; read only
	zone   string
	zoned  bool // has a zone label
	decl   int  // position in the fleet: spec.hosts first, then the pools in order
}

// shape is a node VM shape with its costs worked out.
type shape struct {
	name  string
	size  vec // the VM as declared
	alloc vec // size - nodeReserved: what replicas may use
	cost  vec // size + the VM overhead: what it takes on its host
}

// expandHosts lists the fleet's hosts: spec.hosts, then each pool's <prefix>1..<prefix>N.
func expandHosts(f *v1alpha1.Fleet) []host {
	n := len(f.Spec.Hosts)
	for _, p := range f.Spec.HostPools {
		n += int(max(p.Count, 0))
	}
	hosts := make([]host, 0, n)
	add := func(name string, c v1alpha1.Capacity, labels map[string]string) {
		zone, zoned := labels[ZoneLabel]
		hosts = append(hosts, host{name: name, cap: capacityVec(c), labels: labels, zone: zone, zoned: zoned, decl: len(hosts)})
	}
	for _, h := range f.Spec.Hosts {
		add(h.Name, h.Capacity, h.Labels)
	}
	for _, p := range f.Spec.HostPools {
		c := capacityVec(p.Capacity)
		zone, zoned := p.Labels[ZoneLabel]
		for i := int32(1); i <= p.Count; i++ {
			hosts = append(hosts, host{name: p.Prefix + strconv.Itoa(int(i)), cap: c, labels: p.Labels, zone: zone, zoned: zoned, decl: len(hosts)})
		}
	}
	return hosts
}

// fleetShapes works out the cost of each node shape. Shapes that leave nothing to allocate
// after nodeReserved are kept (CheckFleet reports them) but hold nothing.
func fleetShapes(f *v1alpha1.Fleet, reserved, vmOverhead vec) []shape {
	shapes := make([]shape, len(f.Spec.NodeShapes))
	for i, s := range f.Spec.NodeShapes {
		shapes[i] = makeShape(s.Name, vec{milliCPU(s.CPU), bytesOf(s.Memory)}, reserved, vmOverhead)
	}
	return shapes
}

// CheckFleet reports what makes a valid Fleet unusable for planning, beyond what
// v1alpha1.ValidateFleet checks: host names that collide once pools are expanded, and node
// shapes that nodeReserved leaves nothing of.
func CheckFleet(f *v1alpha1.Fleet) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	owner := map[string]string{}
	for i, h := range f.Spec.Hosts {
		if _, dup := owner[h.Name]; !dup {
			owner[h.Name] = spec.Child("hosts").Index(i).String()
		}
	}
	for i, p := range f.Spec.HostPools {
		pi := spec.Child("hostPools").Index(i).Child("prefix")
		for n := int32(1); n <= p.Count; n++ {
			name := p.Prefix + strconv.Itoa(int(n))
			if first, dup := owner[name]; dup {
				errs = append(errs, field.Invalid(pi, p.Prefix, fmt.Sprintf(
					"host %s of this pool has the name of a host of %s; every host needs its own name, so change the prefix", name, first)))
				break
			}
			owner[name] = pi.String()
		}
	}
	reserved := overheadVec(f.Spec.Overheads.NodeReserved, v1alpha1.DefaultNodeReserved)
	for i, s := range f.Spec.NodeShapes {
		si := spec.Child("nodeShapes").Index(i)
		if c := milliCPU(s.CPU); c <= reserved.cpu {
			errs = append(errs, field.Invalid(si.Child("cpu"), s.CPU.String(), fmt.Sprintf(
				"nodeReserved keeps %s CPU of every node VM, which leaves nothing to allocate; make the shape larger", fmtCPU(reserved.cpu))))
		}
		if m := bytesOf(s.Memory); m <= reserved.mem {
			errs = append(errs, field.Invalid(si.Child("memory"), s.Memory.String(), fmt.Sprintf(
				"nodeReserved keeps %s of every node VM, which leaves nothing to allocate; make the shape larger", fmtMem(reserved.mem, false))))
		}
	}
	return errs
}

// matches reports whether a host's labels satisfy a selector.
func matches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// selectorKey is a canonical string for a selector: "k=v,k2=v2", keys sorted.
func selectorKey(sel map[string]string) string {
	if len(sel) == 0 {
		return ""
	}
	keys := make([]string, 0, len(sel))
	for k := range sel {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := make([]byte, 0, 32)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, k...)
		b = append(b, '=')
		b = append(b, sel[k]...)
	}
	return string(b)
}

// implies reports whether every host that matches a also matches b: a holds all of b's pairs.
func implies(a, b map[string]string) bool {
	for k, v := range b {
		if got, ok := a[k]; !ok || got != v {
			return false
		}
	}
	return true
}
