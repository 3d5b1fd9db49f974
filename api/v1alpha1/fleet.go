package v1alpha1

import "k8s.io/apimachinery/pkg/api/resource"

// Fleet describes the hosts and node shapes a plan may use.
type Fleet struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     FleetSpec  `json:"spec"`
}

// FleetSpec lists hosts, pools of identical hosts, node VM shapes and overheads.
type FleetSpec struct {
	Hosts      []Host      `json:"hosts,omitempty"`
	HostPools  []HostPool  `json:"hostPools,omitempty"`
	NodeShapes []NodeShape `json:"nodeShapes,omitempty"`
	Overheads  Overheads   `json:"overheads"`
}

// Capacity is an amount of cpu and memory.
type Capacity struct {
	CPU    resource.Quantity `json:"cpu"`
	Memory resource.Quantity `json:"memory"`
}

// Host is one physical machine.
type Host struct {
	Name     string            `json:"name"`
	Capacity Capacity          `json:"capacity"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// HostPool is Count identical hosts named <prefix>1 ... <prefix>Count.
type HostPool struct {
	Prefix   string            `json:"prefix"`
	Count    int32             `json:"count"`
	Capacity Capacity          `json:"capacity"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// NodeShape is a size of node VM that containers and sandboxes are packed into.
type NodeShape struct {
	Name   string            `json:"name"`
	CPU    resource.Quantity `json:"cpu"`
	Memory resource.Quantity `json:"memory"`
}

// Overheads are costs the planner adds on top of what workloads ask for.
type Overheads struct {
	// VM is added per VM (workload VMs and node VMs) on its host.
	VM *Capacity `json:"vm,omitempty"`
	// Sandbox is added per sandboxed replica inside its node.
	Sandbox *Capacity `json:"sandbox,omitempty"`
	// NodeReserved is kept back in each node VM, not allocatable to replicas.
	NodeReserved *Capacity `json:"nodeReserved,omitempty"`
}
