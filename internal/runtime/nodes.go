package runtime

import (
	"context"
	"time"
)

// NodeLister is a Driver that runs its instances inside node VMs it owns (VMs
// of strata's, not workloads, each carrying the instances of one isolation
// class): it tells which node VMs there are and what each carries.
type NodeLister interface {
	// Nodes lists the driver's node VMs, sorted by name.
	Nodes(ctx context.Context) ([]Node, error)
}

// Node is one node VM as its driver reports it.
type Node struct {
	// Name is the node VM's ID (an instance of the driver that boots it).
	Name string
	// Class is the isolation class whose instances it carries.
	Class string
	// Shape names its shape (a Fleet's nodeShapes[].name, or the driver's
	// default); CPUMilli and MemoryBytes are its size: what its guest was
	// given.
	Shape                 string
	CPUMilli, MemoryBytes int64
	// UsedCPUMilli and UsedMemoryBytes are what its instances request.
	UsedCPUMilli, UsedMemoryBytes int64
	// State is its VM's state; PID its QEMU process while it runs.
	State State
	PID   int
	// StartedAt is when it booted.
	StartedAt time.Time
	// Instances are the IDs of the instances it carries, sorted.
	Instances []string
}
