package place

import (
	"cmp"
	"math"
	"slices"

	"strata.dev/strata/api/v1alpha1"
)

// unit is a run of replicas the first pass places together: the replicas of one vm workload,
// or those of one isolation class with one hostSelector.
type unit struct {
	reps        []int32
	constrained bool    // has a hostSelector or a wide spread: placed before the rest
	size        float64 // dominant share of the largest host of what it puts on hosts
	first       int32   // its first workload, for a stable order
}

// firstPass places every replica once, in decreasing size, most constrained first.
func (p *planner) firstPass() {
	for _, u := range p.units() {
		for _, r := range u.reps {
			p.placeFirst(r)
		}
	}
}

// units groups the replicas and orders them: the constrained first (a hostSelector, or a spread
// that needs most hosts), then vm workloads by the size of a VM and classes by the size of the
// node VM they prefer, their replicas by decreasing size within.
func (p *planner) units() []unit {
	var units []unit
	type key struct {
		class int32
		sel   int32
		wide  bool
	}
	byClass := map[key]int{}
	for wi := range p.wl {
		w := &p.wl[wi]
		var reps []int32
		for _, r := range w.reps {
			if !p.reps[r].static {
				reps = append(reps, r)
			}
		}
		if len(reps) == 0 {
			continue
		}
		wide := p.wide(w)
		if w.vm {
			units = append(units, unit{reps: reps, constrained: len(w.sel) > 0 || wide,
				size: p.reps[reps[0]].need.dominant(p.maxCap), first: int32(wi)})
			continue
		}
		k := key{w.class, w.group, wide}
		i, ok := byClass[k]
		if !ok {
			i = len(units)
			byClass[k] = i
			units = append(units, unit{constrained: len(w.sel) > 0 || wide, first: int32(wi)})
		}
		units[i].reps = append(units[i].reps, reps...)
	}
	// Each class prefers the shape that takes the least host capacity for all its replicas.
	classReps := make([][]int32, len(p.classes))
	for _, u := range units {
		if w := &p.wl[u.first]; !w.vm {
			classReps[w.class] = append(classReps[w.class], u.reps...)
		}
	}
	for c := range p.classes {
		p.sortBySize(classReps[c], p.maxCap)
		p.classes[c].pref = p.preferShape(classReps[c])
	}
	for i := range units {
		u := &units[i]
		w := &p.wl[u.first]
		if w.vm {
			continue
		}
		ref := p.maxCap
		if pref := p.classes[w.class].pref; pref >= 0 {
			ref = p.shapes[pref].alloc
			u.size = p.shapes[pref].cost.dominant(p.maxCap)
		}
		p.sortBySize(u.reps, ref)
	}
	slices.SortStableFunc(units, func(a, b unit) int {
		if a.constrained != b.constrained {
			if a.constrained {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.size, a.size), cmp.Compare(a.first, b.first))
	})
	return units
}

// wide reports whether workload w is spread so widely that it needs most of the hosts it may
// use (more than half of them, or every zone): such a workload is placed before the others, as
// a daemon on every host must be, or the others would leave no room for it on some.
func (p *planner) wide(w *workload) bool {
	g := p.groups[w.group]
	n := len(w.reps)
	switch w.spread {
	case v1alpha1.SpreadHost:
		return 2*n > len(g.hosts)
	case v1alpha1.SpreadZone:
		return n >= len(g.zones)
	}
	return false
}

// sortBySize orders replicas: those of spread workloads first (each needs a node VM of its own
// host, which the others can then fill), then by decreasing dominant share of ref, then by
// workload and index.
func (p *planner) sortBySize(reps []int32, ref vec) {
	spread := func(r *replica) int {
		if p.wl[r.w].spread != "" {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(reps, func(a, b int32) int {
		ra, rb := &p.reps[a], &p.reps[b]
		return cmp.Or(cmp.Compare(spread(ra), spread(rb)), cmp.Compare(rb.need.dominant(ref), ra.need.dominant(ref)),
			cmp.Compare(ra.w, rb.w), cmp.Compare(ra.idx, rb.idx))
	})
}

// preferShape picks the shape a class's node VMs are made of, the way a cluster autoscaler
// picks an instance type: for each shape, pack the class's replicas (largest first) into
// nodes of that shape, and keep the shape whose nodes take the least host capacity; fewer
// nodes break ties. Shapes that cannot hold every replica come after those that can.
func (p *planner) preferShape(reps []int32) int32 {
	best := int32(-1)
	var bestMiss, bestNodes int
	var bestCost float64
	for s := range p.shapes {
		sh := &p.shapes[s]
		if !sh.alloc.positive() || !sh.cost.fits(p.maxCap) {
			continue
		}
		miss, nodes := p.simulate(reps, sh.alloc)
		if miss == len(reps) && len(reps) > 0 {
			continue
		}
		cost := sh.cost.scale(int64(nodes)).dominant(p.maxCap)
		if best < 0 || miss < bestMiss || (miss == bestMiss && (cost < bestCost || (cost == bestCost && nodes < bestNodes))) {
			best, bestMiss, bestNodes, bestCost = int32(s), miss, nodes, cost
		}
	}
	return best
}

// simulate packs replicas into nodes allocating alloc, each into the first of the last four
// nodes opened that has room: a quick estimate of how many nodes the shape needs.
func (p *planner) simulate(reps []int32, alloc vec) (miss, nodes int) {
	var open [4]vec
	k := 0
	for _, r := range reps {
		need := p.reps[r].need
		if !need.fits(alloc) {
			miss++
			continue
		}
		placed := false
		for i := 0; i < min(k, len(open)); i++ {
			if need.fits(open[i]) {
				open[i] = open[i].sub(need)
				placed = true
				break
			}
		}
		if !placed {
			open[k%len(open)] = alloc.sub(need)
			k++
			nodes++
		}
	}
	return miss, nodes
}

// openShape is the shape of a new node VM for a replica needing need in class c: the class's
// preferred shape, or the cheapest shape that holds its share of what the class still has to
// place when that is less, or the cheapest that holds the replica when the preferred shape
// does not. The share is all of it, or for a replica of a spread workload with ways more
// replicas to place (each in a node VM of its own), one ways-th.
func (p *planner) openShape(c int32, need vec, ways int64) int32 {
	cl := &p.classes[c]
	if pref := cl.pref; pref >= 0 && need.fits(p.shapes[pref].alloc) {
		share := cl.pending
		if ways > 1 {
			share = vec{ceilDiv(share.cpu, ways), ceilDiv(share.mem, ways)}
		}
		rest := share.max(need)
		if !rest.fits(p.shapes[pref].alloc) {
			return pref
		}
		if s := p.cheapestShape(rest); s >= 0 {
			return s
		}
		return pref
	}
	return p.cheapestShape(need)
}

// cheapestShape is the shape allocating at least need that takes the least of a host.
func (p *planner) cheapestShape(need vec) int32 {
	return int32(cheapest(len(p.shapes), func(i int) (alloc, cost vec) { return p.shapes[i].alloc, p.shapes[i].cost }, p.maxCap, need))
}

// shapeCost ranks shapes by what they take of the largest host: the dominant share, with the
// other share as a small tie-breaker.
func (p *planner) shapeCost(s int32) float64 {
	return costShare(p.shapes[s].cost, p.maxCap)
}

// decision is where a replica goes: a host for a vm replica; for a container or sandbox
// replica, an open node VM (node) or a new node VM of a shape on a host.
type decision struct {
	host     int32
	node     int32 // the node VM joined; -1 for a new node VM
	shape    int32 // the new node VM's shape
	score    float64
	newHost  bool // the host was empty
	compared int  // candidates compared
	filler   bool // a smaller shape, put in room left on a used host
}

// decide finds where replica r goes, without changing anything. usedOnly keeps it to hosts
// already in use; avoid is a node VM it must not join (-1 for none).
func (p *planner) decide(r int32, usedOnly bool, avoid int32) (decision, bool) {
	rp := &p.reps[r]
	w := &p.wl[rp.w]
	okHost := func(h int32) bool { return !p.hs[h].closed && !p.conflicts(w, h) }
	if w.vm {
		hc, ok := p.findHost(p.searchGroups(w), rp.need, usedOnly, w.hostAfter, okHost)
		return decision{host: hc.host, node: -1, score: hc.score, newHost: hc.newHost, compared: hc.compared}, ok
	}
	okNode := func(id int32) bool { return id != avoid && p.allows(w, p.nodes[id].host) }
	if id, score, compared := p.findNode(w.class, rp.need, w.nodeAfter, okNode); id >= 0 {
		return decision{host: p.nodes[id].host, node: id, score: score, compared: compared}, true
	}
	s0 := p.openShape(w.class, rp.need, p.ways(r))
	if s0 < 0 {
		return decision{}, false
	}
	gs := p.searchGroups(w)
	open := func(s int32, usedOnly, filler bool) (decision, bool) {
		hc, ok := p.findHost(gs, p.shapes[s].cost, usedOnly, w.hostAfter, okHost)
		return decision{host: hc.host, node: -1, shape: s, score: hc.score, newHost: hc.newHost, compared: hc.compared, filler: filler}, ok
	}
	if d, ok := open(s0, true, false); ok {
		return d, true
	}
	cost0 := p.shapeCost(s0)
	for _, s := range p.shapesByCost() {
		if s != s0 && p.shapeCost(s) < cost0 && rp.need.fits(p.shapes[s].alloc) {
			if d, ok := open(s, true, true); ok {
				return d, true
			}
		}
	}
	if usedOnly {
		return decision{}, false
	}
	if d, ok := open(s0, false, false); ok {
		return d, true
	}
	for _, s := range p.shapesByCost() {
		if s != s0 && rp.need.fits(p.shapes[s].alloc) {
			if d, ok := open(s, false, false); ok {
				return d, true
			}
		}
	}
	return decision{}, false
}

// ways is how many node VMs the rest of replica r's workload needs at least, counting r's:
// one per replica the first pass has still to place when it is spread, else one.
func (p *planner) ways(r int32) int64 {
	if w := &p.wl[p.reps[r].w]; w.spread != "" {
		return int64(max(w.todo, 1))
	}
	return 1
}

// shapesByCost lists the usable shapes, the costliest first.
func (p *planner) shapesByCost() []int32 {
	if p.byCost == nil {
		for s := range p.shapes {
			if p.shapes[s].alloc.positive() {
				p.byCost = append(p.byCost, int32(s))
			}
		}
		slices.SortStableFunc(p.byCost, func(a, b int32) int { return cmp.Compare(p.shapeCost(b), p.shapeCost(a)) })
	}
	return p.byCost
}

// apply carries a decision out.
func (p *planner) apply(r int32, d decision) {
	rp := &p.reps[r]
	w := &p.wl[rp.w]
	if w.spread == v1alpha1.SpreadHost {
		w.hostAfter = d.host
	}
	if w.vm {
		p.placeVM(r, d.host)
		return
	}
	id := d.node
	if id < 0 {
		id = p.openNode(w.class, d.shape, d.host)
	}
	if w.spread == v1alpha1.SpreadHost {
		w.nodeAfter = p.nodes[id].slot
	}
	p.join(r, id)
}

// placeFirst places replica r in the first pass. Once a replica of a workload cannot be
// placed, its later replicas (no smaller, with no fewer constraints, while capacity only
// shrinks) cannot be either, and share the reason.
func (p *planner) placeFirst(r int32) {
	rp := &p.reps[r]
	w := &p.wl[rp.w]
	defer func() { w.todo-- }()
	if !w.vm {
		cl := &p.classes[w.class]
		defer func() { cl.pending = cl.pending.sub(rp.need) }()
	}
	if w.failed != "" {
		rp.reason = w.failed
		p.explain.failed(r)
		return
	}
	d, ok := p.decideOrRetry(r, false)
	if !ok {
		rp.reason = p.whyNot(r)
		w.failed = rp.reason
		p.explain.failed(r)
		return
	}
	p.explain.decided(r, d)
	p.apply(r, d)
}

// decideOrRetry decides, and when the bounded search finds nothing, searches again without
// the bound before giving up.
func (p *planner) decideOrRetry(r int32, usedOnly bool) (decision, bool) {
	if d, ok := p.decide(r, usedOnly, -1); ok {
		return d, true
	}
	p.skipLimit = math.MaxInt
	defer func() { p.skipLimit = maxSkips }()
	return p.decide(r, usedOnly, -1)
}
