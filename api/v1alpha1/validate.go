package v1alpha1

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path"
	"strings"

	"github.com/distribution/reference"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validation checks values, not structure: unknown fields and type errors are caught when a
// document is decoded. Every function returns all the errors it finds, each with its field path,
// and expects a defaulted object.

// ValidateWorkload checks a defaulted Workload.
func ValidateWorkload(w *Workload) field.ErrorList {
	errs := validateMeta(&w.Metadata, field.NewPath("metadata"))
	spec := field.NewPath("spec")
	s := &w.Spec
	errs = append(errs, validateEnum(spec.Child("isolation"), s.Isolation, Isolations)...)
	if t, ok := s.Isolation.Tier(); ok && t != TierVM && s.Image == "" {
		errs = append(errs, field.Required(spec.Child("image"),
			"the "+string(t)+" tier runs an OCI image: set spec.image, or use isolation auto or vm"))
	}
	if s.Image != "" {
		errs = append(errs, imageReference(spec.Child("image"), s.Image)...)
	}
	errs = append(errs, validateEnv(s.Env, spec.Child("env"))...)
	if s.VM != nil {
		errs = append(errs, validateVM(s.VM, spec.Child("vm"))...)
	}
	errs = append(errs, positive(spec.Child("resources", "cpu"), s.Resources.CPU)...)
	errs = append(errs, positive(spec.Child("resources", "memory"), s.Resources.Memory)...)
	if s.Resources.Disk != nil {
		errs = append(errs, positive(spec.Child("resources", "disk"), *s.Resources.Disk)...)
	}
	if s.Replicas != nil && (*s.Replicas < 0 || *s.Replicas > MaxReplicas) {
		errs = append(errs, field.Invalid(spec.Child("replicas"), *s.Replicas,
			fmt.Sprintf("must be between 0 and %d", MaxReplicas)))
	}
	errs = append(errs, dnsLabel(spec.Child("segment"), s.Segment)...)
	errs = append(errs, validatePorts(s.Ports, spec.Child("ports"))...)
	if s.Health != nil {
		errs = append(errs, validateHealth(s.Health, spec.Child("health"))...)
	}
	errs = append(errs, validateEnum(spec.Child("restartPolicy"), s.RestartPolicy,
		[]RestartPolicy{RestartAlways, RestartOnFailure, RestartNever})...)
	errs = append(errs, validateVolumes(s.Volumes, spec.Child("volumes"))...)
	errs = append(errs, validateTraits(&s.Traits, spec.Child("traits"))...)
	errs = append(errs, validatePlacement(&s.Placement, spec.Child("placement"))...)
	if s.Scaling != nil {
		errs = append(errs, validateScaling(s.Scaling, spec.Child("scaling"))...)
	}
	if s.Backup != nil && s.Backup.Hooks != nil {
		errs = append(errs, validateHooks(s.Backup.Hooks, spec.Child("backup", "hooks"))...)
	}
	if s.Backup != nil {
		errs = append(errs, validateBackupSchedule(s.Backup, spec.Child("backup"))...)
	}
	return append(errs, validateSize(w)...)
}

// MaxReplicas bounds spec.replicas.
const MaxReplicas = 10000

// Size limits of an object. Objects live in the daemon's memory (its store's watch history,
// its controllers' caches) as well as on disk; these caps keep one object from taking much
// of either.
const (
	// MaxObjectBytes bounds an object encoded as JSON, its annotations (capped on their own)
	// and its status (the daemon's) left out.
	MaxObjectBytes = 1 << 20
	// MaxAnnotationBytes bounds the sum of the lengths of an object's annotation keys and
	// values (the limit Kubernetes sets).
	MaxAnnotationBytes = 256 << 10
)

// validateSize refuses an object whose JSON encoding, annotations and status left out,
// exceeds MaxObjectBytes.
func validateSize(obj any) field.ErrorList {
	var n int
	switch o := obj.(type) {
	case *Workload:
		c := *o
		c.Status, c.Metadata.Annotations = nil, nil
		b, _ := json.Marshal(&c)
		n = len(b)
	case *Segment:
		c := *o
		c.Status, c.Metadata.Annotations = nil, nil
		b, _ := json.Marshal(&c)
		n = len(b)
	}
	if n <= MaxObjectBytes {
		return nil
	}
	return field.ErrorList{field.Invalid(field.NewPath("spec"), fmt.Sprintf("<%d bytes>", n),
		fmt.Sprintf("the object is %d bytes as JSON (annotations left out), more than the %d (1 MiB) allowed: keep large data "+
			"(files, scripts, keys) in the image or a volume, not in the spec", n, MaxObjectBytes))}
}

// validateEnv applies Kubernetes' rule for environment variable names (printable ASCII
// without '='), which is also what a process's environment can carry unambiguously, and
// refuses NUL bytes in values (the kernel ends a string there).
func validateEnv(env map[string]string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for k, v := range env {
		if msgs := validation.IsRelaxedEnvVarName(k); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p.Key(k), k,
				"must be a non-empty environment variable name of printable ASCII characters without '=', such as LOG_LEVEL"))
		}
		if strings.ContainsRune(v, 0) {
			errs = append(errs, field.Invalid(p.Key(k), "<value with a NUL byte>", "must not contain a NUL byte"))
		}
	}
	return errs
}

// imageReference checks an OCI image reference against the distribution reference grammar
// (the same parse the drivers use to find the image).
func imageReference(p *field.Path, ref string) field.ErrorList {
	if _, err := reference.ParseDockerRef(ref); err != nil {
		return field.ErrorList{field.Invalid(p, ref,
			fmt.Sprintf("is not an image reference (%v): use a name such as localhost/shop/web:1.4 or busybox@sha256:<digest>", err))}
	}
	return nil
}

// forbiddenMountRoots are where a volume must not be mounted: over the whole root, or
// over the kernel's interfaces, which the runtime sets up itself.
var forbiddenMountRoots = []string{"/proc", "/sys", "/dev"}

// mountPath checks a volume's mount path inside the instance.
func mountPath(p *field.Path, mp string) field.ErrorList {
	switch {
	case !path.IsAbs(mp):
		return field.ErrorList{field.Invalid(p, mp, "must be an absolute path such as /data")}
	case strings.ContainsRune(mp, 0):
		return field.ErrorList{field.Invalid(p, mp, "must not contain a NUL byte")}
	case path.Clean(mp) != mp:
		return field.ErrorList{field.Invalid(p, mp, "must be a clean path (no '.', '..', '//' or trailing '/'): use "+path.Clean(mp))}
	case mp == "/":
		return field.ErrorList{field.Invalid(p, mp, "must not be the root directory: mount the volume on a directory such as /data")}
	}
	for _, root := range forbiddenMountRoots {
		if mp == root || strings.HasPrefix(mp, root+"/") {
			return field.ErrorList{field.Invalid(p, mp,
				fmt.Sprintf("must not be %s or under it: the runtime provides %s; mount the volume on a directory such as /data", root, root))}
		}
	}
	return nil
}

// forbiddenHostRoots hold no VM images: device nodes and the kernel's interfaces.
var forbiddenHostRoots = []string{"/dev", "/proc", "/sys"}

// vmFilePath checks the form of a host file a VM boots from (kernel, initrd, disk). A
// relative path names a file in the daemon's images directory; an absolute one must lie in
// a directory the daemon allows, which the daemon checks (it alone knows its directories).
func vmFilePath(p *field.Path, f string) field.ErrorList {
	clean := path.Clean(f)
	switch {
	case strings.ContainsRune(f, 0):
		return field.ErrorList{field.Invalid(p, f, "must not contain a NUL byte")}
	case clean != f:
		return field.ErrorList{field.Invalid(p, f, "must be a clean path (no '.', '..', '//' or trailing '/'): use "+clean)}
	case clean == ".." || strings.HasPrefix(clean, "../"):
		return field.ErrorList{field.Invalid(p, f,
			"must not leave the images directory: give a file name relative to it, such as vmlinuz, or an absolute path in an allowed directory")}
	}
	for _, root := range forbiddenHostRoots {
		if clean == root || strings.HasPrefix(clean, root+"/") {
			return field.ErrorList{field.Invalid(p, f,
				fmt.Sprintf("must not be under %s: a VM boots image files (put them in the daemon's images directory, /var/lib/strata/images by default)", root))}
		}
	}
	return nil
}

func validateVM(vm *VMSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if vm.Kernel != "" {
		errs = append(errs, vmFilePath(p.Child("kernel"), vm.Kernel)...)
	}
	if vm.Initrd != "" {
		errs = append(errs, vmFilePath(p.Child("initrd"), vm.Initrd)...)
	}
	if vm.ContainerDisk != "" {
		errs = append(errs, imageReference(p.Child("containerDisk"), vm.ContainerDisk)...)
	}
	if vm.Disk != nil {
		if vm.Disk.Path == "" {
			errs = append(errs, field.Required(p.Child("disk", "path"), "name the disk image file"))
		} else {
			errs = append(errs, vmFilePath(p.Child("disk", "path"), vm.Disk.Path)...)
		}
		errs = append(errs, validateEnum(p.Child("disk", "format"), vm.Disk.Format, DiskFormats)...)
		errs = append(errs, validateEnum(p.Child("disk", "bus"), vm.Disk.Bus, []DiskBus{"", DiskBusVirtio, DiskBusSATA, DiskBusSCSI, DiskBusIDE})...)
	}
	errs = append(errs, validateEnum(p.Child("firmware"), vm.Firmware, []Firmware{"", FirmwareBIOS, FirmwareUEFI})...)
	if vm.Network != nil {
		errs = append(errs, validateEnum(p.Child("network", "model"), vm.Network.Model, []NICModel{"", NICVirtio, NICE1000, NICE1000E})...)
	}
	// A kernel may boot a disk (its root filesystem); a containerDisk stands alone.
	if vm.ContainerDisk != "" && (vm.Kernel != "" || vm.Disk != nil) {
		errs = append(errs, field.Invalid(p, "", "give one VM source: kernel (+initrd, + an optional root disk), disk, or containerDisk"))
	}
	if vm.Kernel == "" && vm.Disk == nil && vm.ContainerDisk == "" {
		errs = append(errs, field.Required(p, "give a VM source: kernel (+initrd), disk, or containerDisk"))
	}
	if vm.Kernel == "" && (vm.Initrd != "" || vm.Cmdline != "") {
		errs = append(errs, field.Required(p.Child("kernel"), "initrd and cmdline need a kernel"))
	}
	return errs
}

func validatePorts(ports []Port, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	seen := map[string]bool{}
	for i, port := range ports {
		pi := p.Index(i)
		if port.Name != "" {
			errs = append(errs, dnsLabel(pi.Child("name"), port.Name)...)
			if names[port.Name] {
				errs = append(errs, field.Duplicate(pi.Child("name"), port.Name))
			}
			names[port.Name] = true
		}
		errs = append(errs, portNumber(pi.Child("port"), port.Port)...)
		errs = append(errs, validateEnum(pi.Child("protocol"), port.Protocol, []Protocol{ProtocolTCP, ProtocolUDP})...)
		if port.Publish != 0 {
			errs = append(errs, portNumber(pi.Child("publish"), port.Publish)...)
		}
		key := fmt.Sprintf("%d/%s", port.Port, port.Protocol)
		if seen[key] {
			errs = append(errs, field.Duplicate(pi.Child("port"), key))
		}
		seen[key] = true
	}
	return errs
}

func validateHealth(h *HealthCheck, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	probes := 0
	if h.HTTP != nil {
		probes++
		errs = append(errs, portNumber(p.Child("http", "port"), h.HTTP.Port)...)
		if !strings.HasPrefix(h.HTTP.Path, "/") {
			errs = append(errs, field.Invalid(p.Child("http", "path"), h.HTTP.Path, "must start with /"))
		}
	}
	if h.TCP != nil {
		probes++
		errs = append(errs, portNumber(p.Child("tcp", "port"), h.TCP.Port)...)
	}
	if h.Exec != nil {
		probes++
		if len(h.Exec.Command) == 0 {
			errs = append(errs, field.Required(p.Child("exec", "command"), "give the command to run"))
		}
	}
	if probes != 1 {
		errs = append(errs, field.Invalid(p, "", "give exactly one probe: http, tcp or exec"))
	}
	if h.IntervalSeconds < 1 {
		errs = append(errs, field.Invalid(p.Child("intervalSeconds"), h.IntervalSeconds, "must be at least 1"))
	}
	if h.FailureThreshold < 1 {
		errs = append(errs, field.Invalid(p.Child("failureThreshold"), h.FailureThreshold, "must be at least 1"))
	}
	return errs
}

func validateVolumes(vols []Volume, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	mounts := map[string]bool{}
	for i, v := range vols {
		vi := p.Index(i)
		errs = append(errs, dnsLabel(vi.Child("name"), v.Name)...)
		if names[v.Name] {
			errs = append(errs, field.Duplicate(vi.Child("name"), v.Name))
		}
		names[v.Name] = true
		if merrs := mountPath(vi.Child("mountPath"), v.MountPath); len(merrs) > 0 {
			errs = append(errs, merrs...)
		} else if mounts[path.Clean(v.MountPath)] {
			errs = append(errs, field.Duplicate(vi.Child("mountPath"), v.MountPath))
		}
		mounts[path.Clean(v.MountPath)] = true
		if v.Size != nil {
			errs = append(errs, positive(vi.Child("size"), *v.Size)...)
		}
	}
	return errs
}

func validateTraits(t *Traits, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateEnum(p.Child("os"), t.OS, []OSFamily{OSLinux, OSWindows, OSOther})...)
	errs = append(errs, validateEnum(p.Child("trust"), t.Trust, []Trust{TrustTrusted, TrustInternal, TrustUntrusted})...)
	errs = append(errs, validateEnum(p.Child("data"), t.Data, []DataClass{DataPublic, DataInternal, DataConfidential, DataRegulated})...)
	errs = append(errs, validateEnum(p.Child("tenancy"), t.Tenancy, []Tenancy{TenancySingle, TenancyMulti})...)
	for i, c := range t.Capabilities {
		if !isCapability(c) {
			errs = append(errs, field.Invalid(p.Child("capabilities").Index(i), c,
				"must be a Linux capability name such as NET_BIND_SERVICE"))
		}
	}
	for i, h := range t.HostAccess {
		errs = append(errs, validateEnum(p.Child("hostAccess").Index(i), h,
			[]HostAccess{HostNetwork, HostPID, HostIPC, HostDevices, HostPaths, HostUser, HostUTS, HostCgroup})...)
	}
	for i, h := range t.HostPaths {
		hp := p.Child("hostPaths").Index(i)
		switch {
		case h.Path == "":
			errs = append(errs, field.Required(hp.Child("path"), "name the host file or directory"))
		case strings.ContainsRune(h.Path, 0):
			errs = append(errs, field.Invalid(hp.Child("path"), h.Path, "must not contain a NUL byte"))
		case !h.InProject && !path.IsAbs(h.Path):
			errs = append(errs, field.Invalid(hp.Child("path"), h.Path,
				"must be absolute, or relative to the project with inProject: true"))
		}
	}
	for i, u := range t.Unconfined {
		errs = append(errs, validateEnum(p.Child("unconfined").Index(i), u,
			[]Unconfinement{UnconfinedSeccomp, UnconfinedAppArmor, UnconfinedPrivilegeEscalation, UnconfinedProcMount})...)
	}
	for i, m := range t.Kernel.Modules {
		if m == "" || strings.ContainsAny(m, " /\t") {
			errs = append(errs, field.Invalid(p.Child("kernel", "modules").Index(i), m, "must be a kernel module name"))
		}
	}
	for i, s := range t.Kernel.Sysctls {
		if s == "" || strings.ContainsAny(s, " \t") {
			errs = append(errs, field.Invalid(p.Child("kernel", "sysctls").Index(i), s, "must be a sysctl name such as net.core.somaxconn"))
		}
	}
	return errs
}

func validatePlacement(pl *Placement, p *field.Path) field.ErrorList {
	errs := validateEnum(p.Child("spread"), pl.Spread, []Spread{SpreadNone, SpreadHost, SpreadZone})
	errs = append(errs, validateLabels(pl.HostSelector, p.Child("hostSelector"))...)
	if m := pl.NodeVM; m != NodeVMPolicy && m != NodeVMRequired && m != NodeVMNever {
		errs = append(errs, field.Invalid(p.Child("nodeVM"), string(m),
			`use "required" (inside node VMs) or "never" (on the host's kernel), or leave it out to let the policy decide`))
	}
	return errs
}

func validateScaling(sc *Scaling, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if sc.Min < 1 || sc.Min > MaxReplicas {
		errs = append(errs, field.Invalid(p.Child("min"), sc.Min,
			fmt.Sprintf("must be between 1 and %d: scaling keeps at least one replica", MaxReplicas)))
	}
	switch {
	case sc.Max < 1 || sc.Max > MaxReplicas:
		errs = append(errs, field.Invalid(p.Child("max"), sc.Max,
			fmt.Sprintf("must be between 1 and %d: give the most replicas scaling may run", MaxReplicas)))
	case sc.Max < sc.Min:
		errs = append(errs, field.Invalid(p.Child("max"), sc.Max,
			fmt.Sprintf("must not be less than min (%d): raise max or lower min", sc.Min)))
	}
	if sc.TargetCPUPercent < 1 || sc.TargetCPUPercent > 100 {
		errs = append(errs, field.Invalid(p.Child("targetCPUPercent"), sc.TargetCPUPercent,
			"must be a percentage between 1 and 100, such as 70"))
	}
	if sc.LeadSeconds < 0 {
		errs = append(errs, field.Invalid(p.Child("leadSeconds"), sc.LeadSeconds,
			"must not be negative: use 0 for the tier's start-up time"))
	}
	if c := sc.ScaleInCooldownSeconds; c != nil && *c < 0 {
		errs = append(errs, field.Invalid(p.Child("scaleInCooldownSeconds"), *c, "must not be negative"))
	}
	return errs
}

// Reserved is an IPv4 range that no segment may overlap: its addresses are not for a
// network of hosts (loopback, link-local, multicast, ...) or are documentation examples.
type Reserved struct {
	Prefix netip.Prefix
	Name   string
}

// ReservedRanges are the ranges a segment subnet must not overlap, whatever the host
// (IANA's special-purpose registry, less the ranges networks do use: private, shared and
// benchmarking space). Which ranges the host itself routes is checked by the daemon.
var ReservedRanges = []Reserved{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network"`},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation, TEST-NET-1"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation, TEST-NET-2"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation, TEST-NET-3"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved, and the broadcast address"},
}

// ReservedRange returns the first reserved range that p overlaps.
func ReservedRange(p netip.Prefix) (Reserved, bool) {
	for _, r := range ReservedRanges {
		if r.Prefix.Overlaps(p) {
			return r, true
		}
	}
	return Reserved{}, false
}

// ValidateSegment checks a defaulted Segment.
func ValidateSegment(s *Segment) field.ErrorList {
	errs := validateMeta(&s.Metadata, field.NewPath("metadata"))
	spec := field.NewPath("spec")
	if s.Spec.Subnet != "" {
		pfx, err := netip.ParsePrefix(s.Spec.Subnet)
		switch {
		case err != nil || !pfx.Addr().Is4():
			errs = append(errs, field.Invalid(spec.Child("subnet"), s.Spec.Subnet, "must be an IPv4 CIDR such as 10.213.4.0/24"))
		case pfx.Masked() != pfx:
			errs = append(errs, field.Invalid(spec.Child("subnet"), s.Spec.Subnet,
				"has host bits set: use "+pfx.Masked().String()))
		case pfx.Bits() > 29:
			errs = append(errs, field.Invalid(spec.Child("subnet"), s.Spec.Subnet, "is too small: use /29 or larger"))
		default:
			if r, ok := ReservedRange(pfx); ok {
				errs = append(errs, field.Invalid(spec.Child("subnet"), s.Spec.Subnet,
					fmt.Sprintf("overlaps %s (%s), which cannot be a segment: use a private range such as 10.213.4.0/24, or leave it empty to get one from the pool", r.Prefix, r.Name)))
			}
		}
	}
	for i, a := range s.Spec.Allow {
		ai := spec.Child("allow").Index(i)
		if a.From.Segment == "" {
			errs = append(errs, field.Required(ai.Child("from", "segment"), "name the segment the traffic comes from"))
		} else {
			errs = append(errs, dnsLabel(ai.Child("from", "segment"), a.From.Segment)...)
		}
		for j, fp := range a.Ports {
			errs = append(errs, portNumber(ai.Child("ports").Index(j).Child("port"), fp.Port)...)
			errs = append(errs, validateEnum(ai.Child("ports").Index(j).Child("protocol"), fp.Protocol, []Protocol{ProtocolTCP, ProtocolUDP})...)
		}
	}
	errs = append(errs, validateEnum(spec.Child("egress"), s.Spec.Egress, []Egress{EgressAllow, EgressDeny})...)
	return append(errs, validateSize(s)...)
}

// ValidateFleet checks a defaulted Fleet.
func ValidateFleet(f *Fleet) field.ErrorList {
	errs := validateMeta(&f.Metadata, field.NewPath("metadata"))
	spec := field.NewPath("spec")
	hosts := map[string]bool{}
	for i, h := range f.Spec.Hosts {
		hi := spec.Child("hosts").Index(i)
		errs = append(errs, dnsLabel(hi.Child("name"), h.Name)...)
		if hosts[h.Name] {
			errs = append(errs, field.Duplicate(hi.Child("name"), h.Name))
		}
		hosts[h.Name] = true
		errs = append(errs, validateCapacity(h.Capacity, hi.Child("capacity"), false)...)
		errs = append(errs, validateLabels(h.Labels, hi.Child("labels"))...)
	}
	for i, hp := range f.Spec.HostPools {
		pi := spec.Child("hostPools").Index(i)
		errs = append(errs, dnsLabel(pi.Child("prefix"), hp.Prefix)...)
		if hp.Count < 1 || hp.Count > MaxPoolHosts {
			errs = append(errs, field.Invalid(pi.Child("count"), hp.Count, fmt.Sprintf("must be between 1 and %d", MaxPoolHosts)))
		}
		errs = append(errs, validateCapacity(hp.Capacity, pi.Child("capacity"), false)...)
		errs = append(errs, validateLabels(hp.Labels, pi.Child("labels"))...)
	}
	if len(f.Spec.Hosts) == 0 && len(f.Spec.HostPools) == 0 {
		errs = append(errs, field.Required(spec.Child("hosts"), "give hosts or hostPools"))
	}
	shapes := map[string]bool{}
	for i, s := range f.Spec.NodeShapes {
		si := spec.Child("nodeShapes").Index(i)
		errs = append(errs, dnsLabel(si.Child("name"), s.Name)...)
		if shapes[s.Name] {
			errs = append(errs, field.Duplicate(si.Child("name"), s.Name))
		}
		shapes[s.Name] = true
		errs = append(errs, positive(si.Child("cpu"), s.CPU)...)
		errs = append(errs, positive(si.Child("memory"), s.Memory)...)
	}
	o := spec.Child("overheads")
	for name, c := range map[string]*Capacity{"vm": f.Spec.Overheads.VM, "sandbox": f.Spec.Overheads.Sandbox, "nodeReserved": f.Spec.Overheads.NodeReserved} {
		if c != nil {
			errs = append(errs, validateCapacity(*c, o.Child(name), true)...)
		}
	}
	return errs
}

// MaxPoolHosts bounds the size of one host pool.
const MaxPoolHosts = 100000

func validateCapacity(c Capacity, p *field.Path, zeroOK bool) field.ErrorList {
	if zeroOK {
		return append(nonNegative(p.Child("cpu"), c.CPU), nonNegative(p.Child("memory"), c.Memory)...)
	}
	return append(positive(p.Child("cpu"), c.CPU), positive(p.Child("memory"), c.Memory)...)
}

// ValidatePolicy checks the structure of a policy. The CEL expressions are compiled, and
// their errors reported, by the assessment engine.
func ValidatePolicy(pol *AssessmentPolicy) field.ErrorList {
	errs := validateMeta(&pol.Metadata, field.NewPath("metadata"))
	rules := field.NewPath("spec", "rules")
	names := map[string]bool{}
	for i, r := range pol.Spec.Rules {
		ri := rules.Index(i)
		errs = append(errs, dnsLabel(ri.Child("name"), r.Name)...)
		if names[r.Name] {
			errs = append(errs, field.Duplicate(ri.Child("name"), r.Name))
		}
		names[r.Name] = true
		if strings.TrimSpace(r.When) == "" {
			errs = append(errs, field.Required(ri.Child("when"), "give a CEL expression over workload, such as \"workload.spec.traits.privileged\""))
		}
		errs = append(errs, validateEnum(ri.Child("effect"), r.Effect, []Effect{EffectRequire, EffectAtLeast})...)
		errs = append(errs, validateEnum(ri.Child("tier"), r.Tier, Tiers)...)
		if strings.TrimSpace(r.Message) == "" {
			errs = append(errs, field.Required(ri.Child("message"), "say why the rule sets this tier"))
		}
	}
	if nv := pol.Spec.NodeVM; nv != nil && strings.TrimSpace(nv.When) == "" {
		errs = append(errs, field.Required(field.NewPath("spec", "nodeVM", "when"),
			"give a CEL expression over class, such as \"class.tenancy == 'multi'\", or leave spec.nodeVM out for the built-in choice"))
	}
	return errs
}

func validateMeta(m *ObjectMeta, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if m.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "give the object a name (a DNS label such as web-1)"))
	} else {
		errs = append(errs, dnsLabel(p.Child("name"), m.Name)...)
	}
	errs = append(errs, validateLabels(m.Labels, p.Child("labels"))...)
	total := 0
	for k, v := range m.Annotations {
		total += len(k) + len(v)
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(p.Child("annotations").Key(k), k, msg))
		}
	}
	if total > MaxAnnotationBytes {
		errs = append(errs, field.Invalid(p.Child("annotations"), fmt.Sprintf("<%d bytes>", total),
			fmt.Sprintf("the annotations take %d bytes (keys and values), more than the %d (256 KiB) allowed: keep large data out of annotations", total, MaxAnnotationBytes)))
	}
	return errs
}

func validateLabels(labels map[string]string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for k, v := range labels {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(p.Key(k), k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, field.Invalid(p.Key(k), v, msg))
		}
	}
	return errs
}

func dnsLabel(p *field.Path, s string) field.ErrorList {
	if len(validation.IsDNS1123Label(s)) > 0 {
		return field.ErrorList{field.Invalid(p, s, dnsLabelHint)}
	}
	return nil
}

const dnsLabelHint = "use a DNS label: at most 63 lower case letters, digits and '-', " +
	"starting and ending with a letter or digit, such as payments-1"

func portNumber(p *field.Path, port int32) field.ErrorList {
	if port < 1 || port > 65535 {
		return field.ErrorList{field.Invalid(p, port, "must be a port number between 1 and 65535")}
	}
	return nil
}

func positive(p *field.Path, q resource.Quantity) field.ErrorList {
	if q.Sign() <= 0 {
		return field.ErrorList{field.Invalid(p, q.String(), "must be greater than zero")}
	}
	return nil
}

func nonNegative(p *field.Path, q resource.Quantity) field.ErrorList {
	if q.Sign() < 0 {
		return field.ErrorList{field.Invalid(p, q.String(), "must not be negative")}
	}
	return nil
}

func validateEnum[T ~string](p *field.Path, v T, valid []T) field.ErrorList {
	for _, ok := range valid {
		if v == ok {
			return nil
		}
	}
	names := make([]string, 0, len(valid))
	for _, ok := range valid {
		if ok != "" {
			names = append(names, string(ok))
		}
	}
	return field.ErrorList{field.NotSupported(p, string(v), names)}
}

// validateHooks checks that each hook, when given, names a program.
func validateHooks(h *BackupHooks, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, hook := range []struct {
		name string
		cmd  []string
	}{{"pre", h.Pre}, {"post", h.Post}} {
		if hook.cmd != nil && (len(hook.cmd) == 0 || hook.cmd[0] == "") {
			errs = append(errs, field.Invalid(p.Child(hook.name), hook.cmd,
				"name the program to run in each instance, e.g. [\"sh\", \"-c\", \"sync\"], or leave the hook out"))
		}
	}
	return errs
}

// validateBackupSchedule checks spec.backup's schedule, retention, repository and group.
func validateBackupSchedule(b *BackupSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if b.Schedule != "" {
		if _, err := ParseBackupSchedule(b.Schedule); err != nil {
			errs = append(errs, field.Invalid(p.Child("schedule"), b.Schedule, err.Error()))
		}
	}
	if k := b.Keep; k != nil {
		if k.Last < 0 || k.Hourly < 0 || k.Daily < 0 || k.Weekly < 0 {
			errs = append(errs, field.Invalid(p.Child("keep"), *k, "counts must not be negative"))
		} else if k.Last+k.Hourly+k.Daily+k.Weekly == 0 {
			errs = append(errs, field.Invalid(p.Child("keep"), *k, "a retention that keeps nothing would delete every backup: set last, hourly, daily or weekly"))
		}
	}
	if b.Repo != "" {
		errs = append(errs, dnsLabel(p.Child("repo"), b.Repo)...)
	}
	if b.Group != "" {
		errs = append(errs, dnsLabel(p.Child("group"), b.Group)...)
	}
	return errs
}
