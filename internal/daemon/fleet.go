package daemon

import (
	"fmt"
	"strings"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/load"
	"strata.dev/strata/internal/place"
	"strata.dev/strata/internal/runtime/nodevm"
)

// nodeSizing is how the daemon sizes its node VMs: the shapes a new one may have, the
// host's capacity they are ranked by and must fit into, and the node VMs' overheads. The
// zero value is the nodevm driver's defaults.
type nodeSizing struct {
	shapes    []nodevm.Shape
	host      place.Amount
	overheads place.Overheads
	// from says where the sizing comes from, for the log.
	from string
}

// readNodeSizing reads the Fleet of file (--fleet) for the node VMs of the host named
// host: the Fleet must list the host (in spec.hosts or as a member of spec.hostPools),
// whose capacity ranks the Fleet's nodeShapes; the shapes that fit on it with the VM
// overhead are the node VMs' shapes, with the Fleet's overheads. A Fleet without
// nodeShapes leaves the driver's defaults. Errors are the file's, at their line and
// column.
func readNodeSizing(file, host string) (nodeSizing, error) {
	if file == "" {
		return nodeSizing{from: "the default shape"}, nil
	}
	objs, errs := load.ReadFile(file, nil)
	if len(errs) > 0 {
		return nodeSizing{}, fleetError(errs)
	}
	obj, errs := load.One(file, objs, v1alpha1.KindFleet, "--fleet names a file that holds one Fleet")
	if len(errs) > 0 {
		return nodeSizing{}, fleetError(errs)
	}
	f := obj.Object.(*v1alpha1.Fleet)
	if errs := obj.FieldErrors(place.CheckFleet(f)); len(errs) > 0 {
		return nodeSizing{}, fleetError(errs)
	}
	capacity, ok := place.FleetHost(f, host)
	if !ok {
		return nodeSizing{}, fleetError(diag.List{obj.Errorf("spec.hosts", "add this host to spec.hosts (its capacity sizes its node VMs), or start the daemon without --fleet",
			"no host named %q (this host's name, as strata get hosts shows it) in spec.hosts or spec.hostPools", host)})
	}
	if len(f.Spec.NodeShapes) == 0 {
		return nodeSizing{from: "the default shape (the Fleet has no nodeShapes)"}, nil
	}
	s := nodeSizing{host: capacity, overheads: place.FleetOverheads(f)}
	var names, left []string
	for i, sh := range place.FleetNodeShapes(f) {
		if !sh.Cost.Fits(capacity) {
			left = append(left, fmt.Sprintf("%s (%s with the VM overhead)", sh.Name, sh.Cost))
			continue
		}
		s.shapes = append(s.shapes, nodevm.Shape{Name: f.Spec.NodeShapes[i].Name, CPUMilli: sh.Size.CPUMilli, MemoryBytes: sh.Size.MemoryBytes})
		names = append(names, sh.Name)
	}
	if len(s.shapes) == 0 {
		return nodeSizing{}, fleetError(diag.List{obj.Errorf("spec.nodeShapes", "add a node shape that fits on the host, or give the host more capacity",
			"no node shape fits on host %s (%s): %s", host, capacity, strings.Join(left, ", "))})
	}
	s.from = fmt.Sprintf("shapes %s of Fleet %s for host %s (%s)", strings.Join(names, ", "), f.Metadata.Name, host, capacity)
	return s, nil
}

// fleetError is the error of the problems errs with the --fleet file.
func fleetError(errs diag.List) error {
	return fmt.Errorf("--fleet: %w", errs.Err())
}
