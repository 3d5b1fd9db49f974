package place

import (
	"strata.dev/strata/api/v1alpha1"
)

// Item is a workload to place and the tier it runs at (for isolation: auto, the tier
// assessment decided).
type Item struct {
	Workload *v1alpha1.Workload
	Tier     v1alpha1.Tier
}

// Input is what a plan is made from. Workloads must be defaulted and valid; the Fleet must be
// defaulted and valid (see CheckFleet for what else makes it unusable). Plan only reads it.
type Input struct {
	Workloads []Item
	Fleet     *v1alpha1.Fleet
}

// DefaultBudget is the number of improvement steps when Options.Budget is 0.
const DefaultBudget = 2000

// Options tune a plan.
type Options struct {
	// Budget bounds the improvement steps after the first pass (each step tries to merge one
	// node VM away, drain one host or balance one move); 0 means DefaultBudget, a negative
	// number none. It counts steps, not time, so plans stay deterministic.
	Budget int
	// Explain names a workload whose replicas' placements are explained in the plan.
	Explain string
}

// Result is a plan and what it took to make it.
type Result struct {
	// Plan is the placement plan; its Summary.ElapsedMs is left 0 for the caller to fill in.
	Plan  v1alpha1.PlacementPlan
	Stats Stats
}

// Stats describe how the plan was made and what it uses.
type Stats struct {
	// FirstPassHosts and FirstPassNodes are what the first pass used, before improvement.
	FirstPassHosts, FirstPassNodes int
	// Steps is the number of improvement steps taken, of the budget.
	Steps int
	// HostsDrained, NodesMerged and NodesResized count the improvements made.
	HostsDrained, NodesMerged, NodesResized, Rebalanced int
	// Repacked is 1 when placing every VM and node VM again from scratch saved hosts.
	Repacked int
	// Shapes counts node VMs per shape and class, with how full they are.
	Shapes []ShapeUse
}

// ShapeUse is the node VMs of one shape and class.
type ShapeUse struct {
	Shape, Class string
	Nodes        int
	// Utilization is the share of the nodes' allocatable capacity their replicas use.
	Utilization v1alpha1.Utilization
}

// Plan places the input's workloads on its fleet. It never changes the input and gives the
// same plan for the same input.
func Plan(in Input, opts Options) *Result {
	p := newPlanner(in, opts.Explain)
	p.firstPass()
	stats := Stats{FirstPassHosts: p.usedHosts, FirstPassNodes: p.liveNodes()}
	if budget := opts.budget(); budget > 0 {
		p.improve(budget, &stats)
	}
	return p.result(stats)
}

// budget is the number of improvement steps the options allow.
func (o Options) budget() int {
	if o.Budget == 0 {
		return DefaultBudget
	}
	return max(o.Budget, 0)
}

func (p *planner) liveNodes() int {
	n := 0
	for i := range p.nodes {
		if p.nodes[i].alive {
			n++
		}
	}
	return n
}
