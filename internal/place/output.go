package place

import (
	"cmp"
	"slices"
	"strconv"

	"strata.dev/strata/api/v1alpha1"
)

// result writes the plan out: node VMs named node-1, node-2, ... in fleet order of their
// hosts, placements and unplaced replicas in input order.
func (p *planner) result(st Stats) *Result {
	var live []int32
	for id := range p.nodes {
		if n := &p.nodes[id]; n.alive && len(n.reps) > 0 {
			live = append(live, int32(id))
		}
	}
	slices.SortStableFunc(live, func(a, b int32) int {
		na, nb := &p.nodes[a], &p.nodes[b]
		return cmp.Or(cmp.Compare(p.hosts[na.host].decl, p.hosts[nb.host].decl),
			cmp.Compare(p.classes[na.class].name, p.classes[nb.class].name),
			cmp.Compare(p.shapes[na.shape].name, p.shapes[nb.shape].name), cmp.Compare(a, b))
	})
	nodeName := make([]string, len(p.nodes))
	plan := v1alpha1.PlacementPlan{
		TypeMeta:   v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindPlacementPlan},
		Nodes:      make([]v1alpha1.PlannedNode, 0, len(live)),
		Placements: make([]v1alpha1.ReplicaPlacement, 0, len(p.reps)),
		Unplaced:   []v1alpha1.UnplacedReplica{},
	}
	for i, id := range live {
		n := &p.nodes[id]
		nodeName[id] = "node-" + strconv.Itoa(i+1)
		plan.Nodes = append(plan.Nodes, v1alpha1.PlannedNode{Name: nodeName[id], Shape: p.shapes[n.shape].name,
			Host: p.hosts[n.host].name, Class: p.classes[n.class].name})
	}
	for wi := range p.wl {
		w := &p.wl[wi]
		for _, r := range w.reps {
			rp := &p.reps[r]
			if rp.host < 0 {
				plan.Unplaced = append(plan.Unplaced, v1alpha1.UnplacedReplica{Workload: w.name, Replica: rp.idx, Reason: rp.reason})
				continue
			}
			pl := v1alpha1.ReplicaPlacement{Workload: w.name, Replica: rp.idx, Tier: w.tier, Host: p.hosts[rp.host].name}
			if rp.node >= 0 {
				pl.Node = nodeName[rp.node]
			}
			plan.Placements = append(plan.Placements, pl)
		}
	}
	var capUsed, capAll vec
	for _, h := range p.byDecl {
		s := &p.hs[h]
		if s.items == 0 {
			continue
		}
		c := p.hosts[h].cap
		used := c.sub(s.free)
		capUsed, capAll = satAdd(capUsed, used), satAdd(capAll, c)
		cpu, mem := used.frac(c)
		plan.Hosts = append(plan.Hosts, v1alpha1.HostUsage{Name: p.hosts[h].name, CPU: round4(cpu), Memory: round4(mem),
			Nodes: len(s.nodes), VMs: len(s.vms)})
	}
	cpu, mem := capUsed.frac(capAll)
	lb := p.lowerBound()
	plan.Summary = v1alpha1.PlanSummary{
		HostsUsed: p.usedHosts, Nodes: len(live), LowerBound: lb, HostsAvailable: len(p.hosts),
		Replicas: len(p.reps), Placed: len(plan.Placements), UnplacedCount: len(plan.Unplaced),
		Utilization: v1alpha1.Utilization{CPU: round4(cpu), Memory: round4(mem)},
	}
	if lb > 0 {
		plan.Summary.Gap = round4(float64(p.usedHosts-lb) / float64(lb))
	}
	plan.Explanations = p.explain.explanations(nodeName)
	st.Shapes = p.shapeUse(live)
	return &Result{Plan: plan, Stats: st}
}

// shapeUse counts node VMs per shape and class, with how full they are.
func (p *planner) shapeUse(live []int32) []ShapeUse {
	type key struct{ shape, class int32 }
	type acc struct {
		n           int
		used, alloc vec
	}
	m := map[key]*acc{}
	var keys []key
	for _, id := range live {
		n := &p.nodes[id]
		k := key{n.shape, n.class}
		a, ok := m[k]
		if !ok {
			a = &acc{}
			m[k] = a
			keys = append(keys, k)
		}
		a.n++
		a.used, a.alloc = satAdd(a.used, n.used), satAdd(a.alloc, p.alloc(n))
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(p.classes[a.class].name, p.classes[b.class].name), cmp.Compare(p.shapes[a.shape].name, p.shapes[b.shape].name))
	})
	out := make([]ShapeUse, len(keys))
	for i, k := range keys {
		a := m[k]
		cpu, mem := a.used.frac(a.alloc)
		out[i] = ShapeUse{Shape: p.shapes[k.shape].name, Class: p.classes[k.class].name, Nodes: a.n,
			Utilization: v1alpha1.Utilization{CPU: round4(cpu), Memory: round4(mem)}}
	}
	return out
}
