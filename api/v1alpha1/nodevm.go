package v1alpha1

import "time"

// KindNodeVM is the kind of a node VM in the daemon's answers (strata get nodes). Node VMs
// are not stored objects: the daemon reports them as its node VM driver runs them.
const KindNodeVM = "NodeVM"

// NodeVM is a VM the daemon owns (not a Workload) that carries the container and sandbox
// replicas of one isolation class.
type NodeVM struct {
	Name string `json:"name"`
	// Class is the isolation class it carries; a node VM never carries two.
	Class string `json:"class"`
	// ShapeName names its shape: a name of the daemon's Fleet's nodeShapes, or "default".
	ShapeName string `json:"shapeName,omitempty"`
	// Shape is what its guest was given.
	Shape Capacity `json:"shape"`
	// Usage is the sum of its replicas' requests (spec.resources of their workloads, as
	// they were when each replica started).
	Usage Capacity `json:"usage"`
	// Replicas are the instances it carries, sorted by ID.
	Replicas []NodeVMReplica `json:"replicas"`
	// State is its VM's: running, exited or failed.
	State     string     `json:"state"`
	StartedAt *time.Time `json:"startedAt,omitempty"`
}

// NodeVMReplica is one instance a node VM carries.
type NodeVMReplica struct {
	ID       string `json:"id"`
	Workload string `json:"workload"`
}
