package runtime

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"strings"

	"strata.dev/strata/api/v1alpha1"
)

// InstanceSpec is everything a driver needs to start an instance.
type InstanceSpec struct {
	ID       string        // the instance's name, unique within the driver (ValidID)
	Workload string        // the Workload this instance serves
	Slot     int           // the replica slot, 0-based
	Tier     v1alpha1.Tier // the tier to run at; must be one the driver serves
	Image    string        // OCI image reference (container and sandbox tiers)

	// Command replaces the image's entrypoint and command when not empty:
	// Command[0] is the program, looked up in the image's PATH.
	Command []string
	// Env is added to the image's environment; a key here wins over the
	// image's value for the same key.
	Env map[string]string

	// CPUMilli limits CPU time to this many thousandths of a core (0: no
	// limit). MemoryBytes limits memory (0: no limit); reaching it gets a
	// process of the instance OOM-killed.
	CPUMilli    int64
	MemoryBytes int64

	Mounts []Mount // host directories made visible inside the instance

	// Capabilities are the Linux capabilities the instance's processes hold
	// beyond v1alpha1.DefaultCapabilities, as spec.traits.capabilities names
	// them ("NET_RAW", "CAP_NET_RAW", or "ALL" for every one the driver can
	// give: those the strata process holds). Drivers of the
	// container and sandbox tiers grant them; a VM's guest runs a kernel of
	// its own and ignores them.
	Capabilities []string

	// NetNS is the path of a prepared network namespace to join
	// (/run/netns/NAME). Empty: the instance gets a new network namespace
	// with only a loopback interface. A sandbox (runsc) takes over the
	// namespace's addresses and removes them when it exits, so each sandbox
	// start needs a freshly configured namespace.
	NetNS string

	// LogPath is the host file that receives the main process's stdout and
	// stderr, appended, for the instance's whole life (it survives daemon
	// restarts and is not removed by Remove). Empty: output is discarded.
	LogPath string

	// Labels are kept with the instance and reported by Status and List.
	// Keys for which ReservedLabel is true are refused.
	Labels map[string]string

	// VM is what a vm-tier instance boots when it is not an image: a kernel
	// (+initrd, cmdline), a disk, or both. Nil for image VMs and other tiers.
	VM *v1alpha1.VMSource
	// DiskDir, for a VM that boots vm.disk, is a directory that outlives the
	// instance where the driver keeps the slot's writable disk (an overlay of
	// vm.disk, which is never written): made at the first start, used again
	// by every later start, never removed by Remove. Empty: the overlay is
	// the instance's own and its writes end with it.
	DiskDir string
	// RootfsLayer, for a container or sandbox, is a layer archive (a tar of the
	// changes made to the image's root filesystem, removals as whiteouts: what
	// RootfsSaver.SaveRootfs writes) that the driver applies to the new root
	// filesystem before the first process starts. Empty: the image as it is.
	RootfsLayer string
	// DiskBytes sizes the root disk of an image VM (0: the driver picks one
	// that fits the image with room to spare).
	DiskBytes int64
	// VMNet connects a VM to its segment through the tap device the network
	// manager made for instance ID (the driver opens it); nil: no network.
	// Containers and sandboxes use NetNS instead, but for a driver whose
	// Capabilities.VMNet holds (they run in a VM it plugs the tap into).
	VMNet *VMNet
	// Progress, when set, is told in a sentence what a long step of Start is
	// doing (the conversion of a VM's disk), when it begins and ends; the
	// controller records it as an event of the instance. Nil: nobody listens.
	Progress func(msg string) `json:"-"`
}

// VMNet is a VM's place on its segment, as the guest must configure it.
type VMNet struct {
	Address netip.Prefix // the instance's address with the segment's prefix length
	Gateway netip.Addr
	MAC     net.HardwareAddr
	DNS     []netip.Addr
	Search  []string // resolv.conf search domains: the segment's name
}

// Mount makes a host directory visible inside an instance.
type Mount struct {
	HostPath string // absolute path of an existing host directory or file
	Path     string // absolute path inside the instance
	ReadOnly bool
}

// MaxIDLength is the longest accepted instance ID.
const MaxIDLength = 63

// ValidID reports whether id is an acceptable instance ID: 1-63 characters
// of lower-case letters, digits, '-' and '.', starting and ending with a
// letter or digit.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' && c != '.' || i == 0 || i == len(id)-1) {
			return false
		}
	}
	return true
}

// labelPrefix starts every label key that strata's runtime layer writes.
const labelPrefix = "strata.dev/"

// Label keys that drivers store with every instance.
const (
	LabelWorkload = labelPrefix + "workload" // InstanceSpec.Workload
	LabelSlot     = labelPrefix + "slot"     // InstanceSpec.Slot, decimal
	LabelTier     = labelPrefix + "tier"     // InstanceSpec.Tier
	// LabelDriverPrefix starts the keys a driver keeps its own bookkeeping
	// under ("strata.dev/runtime.log-path").
	LabelDriverPrefix = labelPrefix + "runtime."
)

// LabelIsolationClass is the instance label that names its isolation class
// (v1alpha1.Workload.IsolationClass): a node VM driver runs instances of one
// class in node VMs of their own, never beside another class's.
const LabelIsolationClass = "strata.dev/isolation-class"

// ReservedLabel reports whether key is one drivers write themselves, and so
// may not appear in InstanceSpec.Labels.
func ReservedLabel(key string) bool {
	switch key {
	case LabelWorkload, LabelSlot, LabelTier:
		return true
	}
	return strings.HasPrefix(key, LabelDriverPrefix)
}

// ValidateSpec checks what every driver requires of a spec; the error wraps
// ErrInvalid and names each problem. Whether the driver serves the tier is
// the driver's check (ErrUnsupported).
func ValidateSpec(s InstanceSpec) error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if !ValidID(s.ID) {
		add("id %q: want 1-%d lower-case letters, digits, '-' or '.', starting and ending with a letter or digit", s.ID, MaxIDLength)
	}
	if s.Workload == "" {
		add("workload: empty")
	}
	if s.Slot < 0 {
		add("slot %d: negative", s.Slot)
	}
	if !s.Tier.Valid() {
		add("tier %q: want one of container, sandbox, vm", s.Tier)
	}
	if s.Image == "" && s.Tier != v1alpha1.TierVM {
		add("image: empty")
	}
	if s.Tier == v1alpha1.TierVM && s.Image == "" && s.VM == nil {
		add("vm: a VM boots an image, a kernel or a disk; none given")
	}
	if s.VM != nil && s.Tier != v1alpha1.TierVM {
		add("vm: only the vm tier boots a VM source")
	}
	if s.RootfsLayer != "" && s.Tier == v1alpha1.TierVM {
		add("rootfsLayer: a VM keeps its data on its disk, not in a root filesystem layer")
	}
	if s.DiskBytes < 0 {
		add("diskBytes %d: negative", s.DiskBytes)
	}
	if s.VMNet != nil && !s.VMNet.Address.IsValid() {
		add("vmNet.address: not a valid prefix")
	}
	if s.CPUMilli < 0 {
		add("cpuMilli %d: negative", s.CPUMilli)
	}
	if s.MemoryBytes < 0 {
		add("memoryBytes %d: negative", s.MemoryBytes)
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			add("env %q: a name may not be empty or contain '=' or NUL", k)
		}
	}
	for i, c := range s.Capabilities {
		if !validCapability(c) {
			add("capabilities[%d] %q: want a capability name such as NET_RAW or CAP_NET_RAW, or ALL", i, c)
		}
	}
	for i, m := range s.Mounts {
		if !path.IsAbs(m.HostPath) {
			add("mounts[%d].hostPath %q: not an absolute path", i, m.HostPath)
		}
		if !path.IsAbs(m.Path) || path.Clean(m.Path) == "/" {
			add("mounts[%d].path %q: want an absolute path other than /", i, m.Path)
		}
	}
	if s.NetNS != "" && !path.IsAbs(s.NetNS) {
		add("netns %q: not an absolute path", s.NetNS)
	}
	if s.LogPath != "" && !path.IsAbs(s.LogPath) {
		add("logPath %q: not an absolute path", s.LogPath)
	}
	for k := range s.Labels {
		if ReservedLabel(k) {
			add("labels: key %q is reserved for drivers", k)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: instance %q: %s", ErrInvalid, s.ID, strings.Join(problems, "; "))
}

// validCapability reports whether c is written as a capability name: NAME or
// CAP_NAME of upper-case letters, digits and '_', or ALL. Whether the kernel
// knows the name is the driver's check.
func validCapability(c string) bool {
	name := strings.TrimPrefix(c, "CAP_")
	if name == "" {
		return false
	}
	for _, r := range name {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}
