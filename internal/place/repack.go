package place

import (
	"cmp"
	"slices"
)

// detachNode takes node VM id, with its replicas, off its host; attachNode puts it on one.
// In between, its replicas count on no host.
func (p *planner) detachNode(id int32) {
	n := &p.nodes[id]
	h := n.host
	for _, r := range n.reps {
		p.spreadAdd(&p.wl[p.reps[r].w], h, -1)
		p.reps[r].host = -1
	}
	p.hs[h].nodes = remove(p.hs[h].nodes, id)
	p.take(h, p.shapes[n.shape].cost.scale(-1), -1)
	n.host = -1
	p.log(func() { p.attachNode(id, h) })
}

func (p *planner) attachNode(id, h int32) {
	n := &p.nodes[id]
	n.host = h
	for _, r := range n.reps {
		p.spreadAdd(&p.wl[p.reps[r].w], h, 1)
		p.reps[r].host = h
	}
	p.hs[h].nodes = append(p.hs[h].nodes, id)
	p.take(h, p.shapes[n.shape].cost, 1)
	p.log(func() { p.detachNode(id) })
}

// repack places every VM and node VM again from scratch, the most constrained and then the
// largest first, each on the tightest-fitting used host (else the next empty one), now that
// the node VMs have their final size. It keeps the result when it uses fewer hosts.
func (p *planner) repack() bool {
	type item struct {
		id          int32
		vm          bool
		constrained bool
		size        float64
	}
	var items []item
	for h := range p.hs {
		for _, r := range p.hs[h].vms {
			items = append(items, item{r, true, len(p.wl[p.reps[r].w].sel) > 0, p.reps[r].need.dominant(p.maxCap)})
		}
		for _, id := range p.hs[h].nodes {
			constrained := false
			for _, r := range p.nodes[id].reps {
				constrained = constrained || len(p.wl[p.reps[r].w].sel) > 0
			}
			items = append(items, item{id, false, constrained, p.shapes[p.nodes[id].shape].cost.dominant(p.maxCap)})
		}
	}
	slices.SortStableFunc(items, func(a, b item) int {
		if a.constrained != b.constrained {
			if a.constrained {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.size, a.size)
	})
	before := p.usedHosts
	snap := p.explain.snapshot(p.trackedAll())
	mark := p.begin()
	for _, it := range items {
		if it.vm {
			p.unplaceVM(it.id)
		} else {
			p.detachNode(it.id)
		}
	}
	for _, it := range items {
		if it.vm {
			d, ok := p.decide(it.id, false, -1)
			if !ok {
				p.rollback(mark)
				return false
			}
			p.apply(it.id, d)
			continue
		}
		if h, ok := p.nodeHost(it.id, false); ok {
			p.attachNode(it.id, h)
			continue
		}
		// The node VM as a whole fits nowhere (its replicas' spreads may now clash with what
		// went first): its replicas go one by one, into other or new node VMs.
		for _, r := range slices.Clone(p.nodes[it.id].reps) {
			p.leave(r)
			d, ok := p.decide(r, false, it.id)
			if !ok {
				p.rollback(mark)
				return false
			}
			p.apply(r, d)
		}
		p.deleteNode(it.id)
	}
	if p.usedHosts >= before {
		p.rollback(mark)
		return false
	}
	p.commit(mark)
	p.explain.moved(snap, "when every VM and node VM was placed again from scratch, largest first")
	return true
}

// trackedAll lists the placed replicas of the explained workload.
func (p *planner) trackedAll() []int32 {
	if p.explain == nil || p.explain.w < 0 {
		return nil
	}
	return p.wl[p.explain.w].reps
}
