package containerd

import (
	"fmt"
	"slices"

	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/pkg/cap"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// confinement returns the spec options that confine an instance's processes,
// in a container and in a sandbox alike: the capability set
// (v1alpha1.DefaultCapabilities and those the spec asks for) and, after it,
// containerd's default seccomp profile, which allows the system calls of the
// capabilities held (so creating a user namespace, or mounting, needs
// CAP_SYS_ADMIN). An unknown capability is ErrInvalid; one that the tier
// cannot grant is ErrUnsupported.
func confinement(spec runtime.InstanceSpec) ([]oci.SpecOpts, error) {
	caps, err := capabilitySet(spec.Capabilities)
	if err != nil {
		return nil, err
	}
	if spec.Tier == v1alpha1.TierSandbox && slices.Contains(caps, "CAP_NET_RAW") {
		// runsc removes CAP_NET_RAW from every sandbox unless it runs with
		// --net-raw for the whole host; a workload that needs raw sockets would
		// start and then fail.
		return nil, fmt.Errorf("%w in the sandbox tier: capabilities: NET_RAW (asked for, or part of ALL): gVisor keeps raw sockets "+
			"off in sandboxes; run the workload as a vm (its own kernel), or as a container (isolation: container)", runtime.ErrUnsupported)
	}
	opts := []oci.SpecOpts{oci.WithCapabilities(caps), seccomp.WithDefaultProfile()}
	if spec.Tier == v1alpha1.TierSandbox {
		// runsc filters its own system calls to the host whatever the spec
		// says, and ignores the spec's profile unless told to apply it inside
		// the sandbox too: then the workload meets the same filter as in a
		// container.
		opts = append(opts, oci.WithAnnotations(map[string]string{gvisorOCISeccomp: "true"}))
	}
	return opts, nil
}

// gvisorOCISeccomp is the annotation that has runsc apply the OCI spec's
// seccomp profile to the sandboxed processes (its --oci-seccomp flag, which
// runsc lets a container's annotations turn on, never off).
const gvisorOCISeccomp = "dev.gvisor.flag.oci-seccomp"

// capabilitySet returns the kernel names ("CAP_CHOWN") of the default
// capabilities and those asked for, sorted and without duplicates. ALL is
// every capability this process holds: an instance can get no other.
func capabilitySet(asked []string) ([]string, error) {
	caps := make([]string, 0, len(v1alpha1.DefaultCapabilities)+len(asked))
	for _, c := range v1alpha1.DefaultCapabilities {
		caps = append(caps, v1alpha1.CapabilityName(c))
	}
	var held []string
	if len(asked) > 0 {
		var err error
		if held, err = cap.Current(); err != nil {
			return nil, fmt.Errorf("read this process's capabilities: %w", err)
		}
	}
	for i, c := range asked {
		name := v1alpha1.CapabilityName(c)
		switch {
		case name == v1alpha1.AllCapabilities:
			caps = append(caps, held...)
		case slices.Contains(held, name):
			caps = append(caps, name)
		case !slices.Contains(cap.Known(), name):
			return nil, fmt.Errorf("%w: capabilities[%d] %q: not a Linux capability (see capabilities(7)); "+
				"spec.traits.capabilities takes names such as NET_RAW or CAP_NET_RAW", runtime.ErrInvalid, i, c)
		default:
			return nil, fmt.Errorf("%w: capabilities[%d] %q: strata does not hold %s on this host, so it cannot give it; "+
				"run the workload as a vm, or strata with that capability", runtime.ErrUnsupported, i, c, name)
		}
	}
	slices.Sort(caps)
	return slices.Compact(caps), nil
}
