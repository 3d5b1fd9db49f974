package place

import (
	"cmp"
	"math"
	"slices"

	"strata.dev/strata/api/v1alpha1"
)

// newPlanner works the input out into the planner's numbers: hosts in planning order, shapes
// with their costs, one replica per workload replica with what it needs, the isolation
// classes and the reasons some replicas can never be placed.
func newPlanner(in Input, explain string) *planner {
	fleet := in.Fleet
	if fleet == nil {
		fleet = &v1alpha1.Fleet{}
	}
	o := fleet.Spec.Overheads
	p := &planner{
		vmOverhead: overheadVec(o.VM, v1alpha1.DefaultVMOverhead),
		sbOverhead: overheadVec(o.Sandbox, v1alpha1.DefaultSandboxOverhead),
		reserved:   overheadVec(o.NodeReserved, v1alpha1.DefaultNodeReserved),
		classOf:    map[string]int32{},
		groupOf:    map[string]int32{},
		skipLimit:  maxSkips,
	}
	p.shapes = fleetShapes(fleet, p.reserved, p.vmOverhead)
	p.setupHosts(expandHosts(fleet), p.demand(in.Workloads))
	p.setupWorkloads(in.Workloads)
	if explain != "" {
		p.explain = newExplainer(p, explain)
	}
	return p
}

// setupHosts orders the hosts for planning: the hosts that would take the fewest of their
// kind to hold the whole demand come first (the larger share of the demand that one host
// holds, per resource), then the larger, then fleet order. A CPU-bound estate so opens hosts
// with the most CPU first.
func (p *planner) setupHosts(hosts []host, demand vec) {
	for _, h := range hosts {
		p.maxCap = p.maxCap.max(h.cap)
	}
	holds := func(h *host) float64 {
		if !demand.positive() {
			return 0
		}
		c, m := h.cap.frac(demand)
		return math.Min(c, m)
	}
	size := func(h *host) float64 {
		c, m := h.cap.frac(p.maxCap)
		return c + m
	}
	slices.SortStableFunc(hosts, func(a, b host) int {
		return cmp.Or(cmp.Compare(holds(&b), holds(&a)), cmp.Compare(size(&b), size(&a)), cmp.Compare(a.decl, b.decl))
	})
	p.hosts = hosts
	p.hs = make([]hostState, len(hosts))
	p.byDecl = make([]int32, len(hosts))
	for i := range hosts {
		p.hs[i].free = hosts[i].cap
		p.byDecl[hosts[i].decl] = int32(i)
	}
}

// demand is roughly what the workloads ask of the hosts: every replica's resources, with the
// VM overhead for vm replicas and the sandbox overhead for sandbox ones.
func (p *planner) demand(items []Item) vec {
	var d vec
	for _, it := range items {
		if it.Workload == nil {
			continue
		}
		need := replicaNeed(it.Tier, vec{milliCPU(it.Workload.Spec.Resources.CPU), bytesOf(it.Workload.Spec.Resources.Memory)}, p.vmOverhead, p.sbOverhead)
		d = satAdd(d, satScale(need, int64(max(it.Workload.Spec.ReplicaCount(), 0))))
	}
	return d
}

func (p *planner) setupWorkloads(items []Item) {
	total := 0
	for _, it := range items {
		if it.Workload != nil {
			total += int(max(it.Workload.Spec.ReplicaCount(), 0))
		}
	}
	p.reps = make([]replica, 0, total)
	p.wl = make([]workload, 0, len(items))
	for _, it := range items {
		w := it.Workload
		if w == nil {
			continue
		}
		wi := int32(len(p.wl))
		p.wl = append(p.wl, workload{
			name: w.Metadata.Name, tier: it.Tier, vm: it.Tier == v1alpha1.TierVM, class: -1,
			sel: w.Spec.Placement.HostSelector, spread: w.Spec.Placement.Spread, hostAfter: -1, nodeAfter: -1,
		})
		wk := &p.wl[wi]
		switch wk.spread {
		case v1alpha1.SpreadHost:
			wk.onHost = map[int32]int32{}
		case v1alpha1.SpreadZone:
			wk.onZone = map[string]int32{}
		}
		wk.group = p.groupFor(wk.sel)
		need := replicaNeed(it.Tier, vec{milliCPU(w.Spec.Resources.CPU), bytesOf(w.Spec.Resources.Memory)}, p.vmOverhead, p.sbOverhead)
		if !wk.vm && it.Tier.Valid() {
			name := w.IsolationClass()
			c, ok := p.classOf[name]
			if !ok {
				c = int32(len(p.classes))
				p.classes = append(p.classes, class{name: name, tree: newFitTree(0), pref: -1})
				p.classOf[name] = c
			}
			wk.class = c
		}
		all := p.staticReason(wk, need)
		n := max(w.Spec.ReplicaCount(), 0)
		wk.reps = make([]int32, n)
		for i := range n {
			r := int32(len(p.reps))
			reason := all
			if reason == "" {
				reason = p.spreadReason(wk, i, n)
			}
			p.reps = append(p.reps, replica{w: wi, idx: i, need: need, node: -1, host: -1, reason: reason, static: reason != ""})
			wk.reps[i] = r
			if reason != "" {
				continue
			}
			wk.todo++
			if wk.class >= 0 {
				cl := &p.classes[wk.class]
				cl.pending = cl.pending.add(need)
			}
		}
	}
}
