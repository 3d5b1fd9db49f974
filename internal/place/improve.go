package place

import (
	"cmp"
	"slices"

	"strata.dev/strata/api/v1alpha1"
)

// improve spends up to budget steps making the first pass's plan better, in the order of the
// objective: fewer hosts, fewer node VMs, then balance. Every change keeps every constraint;
// a change that cannot be completed is undone.
func (p *planner) improve(budget int, st *Stats) {
	steps := budget
	st.NodesResized += p.shrinkNodes()
	st.NodesMerged += p.mergeNodes(&steps)
	st.NodesResized += p.shrinkNodes()
	if p.repack() {
		st.Repacked++
	}
	st.HostsDrained += p.drainHosts(&steps)
	st.NodesMerged += p.mergeNodes(&steps)
	st.NodesResized += p.shrinkNodes()
	p.retryUnplaced()
	st.Rebalanced += p.balance(&steps)
	st.Steps = budget - steps
}

// shrinkNodes gives every node VM the cheapest shape that holds its replicas and takes no more
// of its host in either resource, and removes node VMs left empty. It takes no steps: each
// node is looked at once.
func (p *planner) shrinkNodes() int {
	resized := 0
	for id := range p.nodes {
		n := &p.nodes[id]
		if !n.alive {
			continue
		}
		if len(n.reps) == 0 {
			p.deleteNode(int32(id))
			continue
		}
		cur := p.shapes[n.shape].cost
		best, bestCost := n.shape, p.shapeCost(n.shape)
		for s := range p.shapes {
			sh := &p.shapes[s]
			if n.used.fits(sh.alloc) && sh.cost.fits(cur) && sh.cost != cur && p.shapeCost(int32(s)) < bestCost {
				best, bestCost = int32(s), p.shapeCost(int32(s))
			}
		}
		if best != n.shape {
			snap := p.explain.snapshot(n.reps)
			from := p.shapes[n.shape].name
			p.reshape(int32(id), best)
			p.explain.resized(snap, from, p.shapes[best].name)
			resized++
		}
	}
	return resized
}

// fill is how full a node VM is: the larger share of its allocatable capacity in use.
func (p *planner) fill(id int32) float64 {
	n := &p.nodes[id]
	return n.used.dominant(p.alloc(n))
}

// mergeNodes empties the least-filled node VMs of each class into the others of the class
// (never into new ones) and removes them. Each attempt is a step.
func (p *planner) mergeNodes(steps *int) int {
	merged := 0
	for c := range p.classes {
		cl := &p.classes[c]
		var list []int32
		for _, id := range cl.nodes {
			if p.nodes[id].alive {
				list = append(list, id)
			}
		}
		slices.SortStableFunc(list, func(a, b int32) int { return cmp.Compare(p.fill(a), p.fill(b)) })
		for _, id := range list {
			n := &p.nodes[id]
			if *steps <= 0 {
				return merged
			}
			if !n.alive || len(n.reps) == 0 {
				continue
			}
			if !n.used.fits(cl.slack.sub(p.alloc(n).sub(n.used))) {
				continue
			}
			*steps--
			snap := p.explain.snapshot(n.reps)
			mark := p.begin()
			if p.emptyNode(id, false) {
				p.deleteNode(id)
				p.commit(mark)
				p.explain.moved(snap, "merged into another node VM of its class")
				merged++
			} else {
				p.rollback(mark)
			}
		}
	}
	return merged
}

// emptyNode moves every replica of node VM id elsewhere, the largest first: into other node
// VMs of its class, and when newNodes is set also into new node VMs on hosts in use. It
// reports whether all moved; the caller undoes a partial move.
func (p *planner) emptyNode(id int32, newNodes bool) bool {
	reps := slices.Clone(p.nodes[id].reps)
	slices.SortStableFunc(reps, func(a, b int32) int {
		return cmp.Or(cmp.Compare(p.reps[b].need.dominant(p.alloc(&p.nodes[id])), p.reps[a].need.dominant(p.alloc(&p.nodes[id]))), cmp.Compare(a, b))
	})
	for _, r := range reps {
		p.leave(r)
		w := &p.wl[p.reps[r].w]
		if !newNodes {
			to, _, _ := p.findNode(w.class, p.reps[r].need, -1, func(n int32) bool { return n != id && p.allows(w, p.nodes[n].host) })
			if to < 0 {
				return false
			}
			p.join(r, to)
			continue
		}
		d, ok := p.decide(r, true, id)
		if !ok {
			return false
		}
		p.apply(r, d)
	}
	return true
}

// drainHosts tries to empty hosts onto the others in use, those carrying the least first (so
// that small hosts go before large ones with as much on them), pass after pass while a pass
// frees a host. Each attempt is a step.
func (p *planner) drainHosts(steps *int) int {
	drained := 0
	for *steps > 0 {
		var order []int32
		for h := range p.hs {
			if p.hs[h].items > 0 {
				order = append(order, int32(h))
			}
		}
		slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(p.carried(a), p.carried(b)) })
		progress := false
		for _, h := range order {
			if *steps <= 0 {
				break
			}
			if p.hs[h].items == 0 || !p.mayDrain(h) {
				continue
			}
			*steps--
			if p.drain(h) {
				drained++
				progress = true
			}
		}
		if !progress {
			break
		}
	}
	return drained
}

// carried is what host h carries, as the larger share of the largest host's capacity.
func (p *planner) carried(h int32) float64 {
	c, m := p.hosts[h].cap.sub(p.hs[h].free).frac(p.maxCap)
	return max(c, m) + 1e-3*min(c, m)
}

// load is the larger share of host h's capacity in use, plus a little of the other share to
// order hosts that tie.
func (p *planner) load(h int32) float64 {
	c, m := p.hosts[h].cap.sub(p.hs[h].free).frac(p.hosts[h].cap)
	return max(c, m) + 1e-3*min(c, m)
}

// mayDrain is a quick necessary condition for draining host h: what its VMs and replicas need
// fits in the room left on the other used hosts and in their node VMs.
func (p *planner) mayDrain(h int32) bool {
	s := &p.hs[h]
	var need, slack vec
	for _, r := range s.vms {
		need = need.add(p.reps[r].need)
	}
	for _, id := range s.nodes {
		n := &p.nodes[id]
		need = need.add(n.used)
		slack = slack.add(p.alloc(n).sub(n.used))
	}
	return need.fits(p.usedFree.sub(s.free).add(p.slack.sub(slack)))
}

// drain moves everything off host h onto other hosts in use, or changes nothing.
func (p *planner) drain(h int32) bool {
	var tracked []int32
	for _, id := range p.hs[h].nodes {
		tracked = append(tracked, p.nodes[id].reps...)
	}
	tracked = append(tracked, p.hs[h].vms...)
	snap := p.explain.snapshot(tracked)
	mark := p.begin()
	p.setClosed(h, true)
	ok := p.evacuate(h)
	if ok {
		p.commit(mark)
	} else {
		p.rollback(mark)
	}
	p.setClosed(h, false)
	if ok {
		p.explain.moved(snap, "while "+p.hosts[h].name+" was drained to free it")
	}
	return ok
}

// evacuate moves the VMs and node VMs of closed host h elsewhere, the largest first. A node VM
// moves whole when a used host has room for it, else its replicas move one by one.
func (p *planner) evacuate(h int32) bool {
	type item struct {
		id   int32
		vm   bool
		size float64
	}
	var items []item
	for _, r := range p.hs[h].vms {
		items = append(items, item{r, true, p.reps[r].need.dominant(p.hosts[h].cap)})
	}
	for _, id := range p.hs[h].nodes {
		items = append(items, item{id, false, p.shapes[p.nodes[id].shape].cost.dominant(p.hosts[h].cap)})
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(b.size, a.size) })
	for _, it := range items {
		if it.vm {
			r := it.id
			p.unplaceVM(r)
			d, ok := p.decide(r, true, -1)
			if !ok {
				return false
			}
			p.apply(r, d)
			continue
		}
		if to, ok := p.nodeHost(it.id, true); ok {
			p.moveNode(it.id, to)
			continue
		}
		if !p.emptyNode(it.id, true) {
			return false
		}
		p.deleteNode(it.id)
	}
	return true
}

// nodeHost finds another host for node VM id as a whole: one that every replica in it may run
// on, with room for the node VM.
func (p *planner) nodeHost(id int32, usedOnly bool) (int32, bool) {
	n := &p.nodes[id]
	sel := map[string]string{}
	for _, r := range n.reps {
		for k, v := range p.wl[p.reps[r].w].sel {
			if old, ok := sel[k]; ok && old != v {
				return -1, false
			}
			sel[k] = v
		}
	}
	if len(sel) == 0 {
		sel = nil
	}
	g := p.groupFor(sel)
	hc, ok := p.findHost([]int32{g}, p.shapes[n.shape].cost, usedOnly, -1, func(to int32) bool { return p.nodeMayMove(id, to) })
	return hc.host, ok
}

// nodeMayMove reports whether node VM id could move to host to without breaking the spread of
// a replica in it (selectors are the caller's). The node VM may be on no host.
func (p *planner) nodeMayMove(id, to int32) bool {
	n := &p.nodes[id]
	if to == n.host || p.hs[to].closed {
		return false
	}
	if n.host < 0 {
		for _, r := range n.reps {
			if p.conflicts(&p.wl[p.reps[r].w], to) {
				return false
			}
		}
		return true
	}
	from := &p.hosts[n.host]
	for _, r := range n.reps {
		w := &p.wl[p.reps[r].w]
		switch w.spread {
		case v1alpha1.SpreadHost:
			if w.onHost[to] > 0 {
				return false
			}
		case v1alpha1.SpreadZone:
			t := &p.hosts[to]
			own := int32(0)
			if t.zone == from.zone {
				own = 1
			}
			if !t.zoned || w.onZone[t.zone]-own > 0 {
				return false
			}
		}
	}
	return true
}

// retryUnplaced tries again the replicas the first pass could not place, now that the
// improvement steps may have made room; it may use new hosts.
func (p *planner) retryUnplaced() {
	for wi := range p.wl {
		p.wl[wi].failed = ""
	}
	for r := range p.reps {
		rp := &p.reps[r]
		if rp.reason == "" || rp.static {
			continue
		}
		w := &p.wl[rp.w]
		if w.failed != "" {
			rp.reason = w.failed
			continue
		}
		d, ok := p.decideOrRetry(int32(r), false)
		if !ok {
			rp.reason = p.whyNot(int32(r))
			w.failed = rp.reason
			continue
		}
		p.explain.decided(int32(r), d)
		p.apply(int32(r), d)
		rp.reason = ""
	}
}

// balance evens out the load of the used hosts without changing how many there are: it moves
// a VM or a node VM from the most loaded host to the least loaded one while that lowers the
// higher of the two loads. Each move is a step.
func (p *planner) balance(steps *int) int {
	moved := 0
	stuck := map[int32]bool{}
	for *steps > 0 {
		hi, lo := int32(-1), int32(-1)
		for h := range p.hs {
			if p.hs[h].items == 0 {
				continue
			}
			if !stuck[int32(h)] && (hi < 0 || p.load(int32(h)) > p.load(hi)) {
				hi = int32(h)
			}
			if lo < 0 || p.load(int32(h)) < p.load(lo) {
				lo = int32(h)
			}
		}
		if hi < 0 || lo < 0 || hi == lo || p.load(hi)-p.load(lo) < 0.02 {
			break
		}
		if !p.balanceOne(hi, lo) {
			stuck[hi] = true
			continue
		}
		*steps--
		moved++
	}
	return moved
}

// balanceOne moves the item of host hi that best evens hi and lo out, if any lowers the
// higher load of the two.
func (p *planner) balanceOne(hi, lo int32) bool {
	base := p.load(hi)
	bestVM, bestNode := int32(-1), int32(-1)
	bestPeak := base - 1e-9
	peak := func(v vec) float64 {
		a := p.hosts[hi].cap.sub(p.hs[hi].free).sub(v).dominant(p.hosts[hi].cap)
		b := p.hosts[lo].cap.sub(p.hs[lo].free).add(v).dominant(p.hosts[lo].cap)
		return max(a, b)
	}
	for _, r := range p.hs[hi].vms {
		w := &p.wl[p.reps[r].w]
		need := p.reps[r].need
		if !need.fits(p.hs[lo].free) || (len(w.sel) > 0 && !matches(w.sel, p.hosts[lo].labels)) || !p.vmMayMove(r, lo) {
			continue
		}
		if pk := peak(need); pk < bestPeak {
			bestVM, bestNode, bestPeak = r, -1, pk
		}
	}
	for _, id := range p.hs[hi].nodes {
		cost := p.shapes[p.nodes[id].shape].cost
		if !cost.fits(p.hs[lo].free) || !p.nodeMayMove(id, lo) || !p.nodeSelectorsMatch(id, lo) {
			continue
		}
		if pk := peak(cost); pk < bestPeak {
			bestVM, bestNode, bestPeak = -1, id, pk
		}
	}
	switch {
	case bestVM >= 0:
		snap := p.explain.snapshot([]int32{bestVM})
		p.unplaceVM(bestVM)
		p.placeVM(bestVM, lo)
		p.explain.moved(snap, "to balance the load")
	case bestNode >= 0:
		snap := p.explain.snapshot(p.nodes[bestNode].reps)
		p.moveNode(bestNode, lo)
		p.explain.moved(snap, "to balance the load")
	default:
		return false
	}
	return true
}

// vmMayMove reports whether vm replica r could move to host to without breaking its spread.
func (p *planner) vmMayMove(r, to int32) bool {
	w := &p.wl[p.reps[r].w]
	from := p.reps[r].host
	switch w.spread {
	case v1alpha1.SpreadHost:
		return w.onHost[to] == 0
	case v1alpha1.SpreadZone:
		t := &p.hosts[to]
		own := int32(0)
		if t.zone == p.hosts[from].zone {
			own = 1
		}
		return t.zoned && w.onZone[t.zone]-own == 0
	}
	return true
}

// nodeSelectorsMatch reports whether host to matches the selector of every replica in node id.
func (p *planner) nodeSelectorsMatch(id, to int32) bool {
	for _, r := range p.nodes[id].reps {
		if sel := p.wl[p.reps[r].w].sel; len(sel) > 0 && !matches(sel, p.hosts[to].labels) {
			return false
		}
	}
	return true
}
