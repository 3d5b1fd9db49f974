package place

import "fmt"

// PlanAndAudit plans in as Plan does and then audits the planner's own bookkeeping against
// values recomputed from scratch: free capacity of hosts, node VMs and their trees, the sums
// kept for quick checks, and the spread counts. Every undo path runs through these, so a
// mistake in one shows up here.
func PlanAndAudit(in Input, opts Options) (*Result, []string) {
	p := newPlanner(in, opts.Explain)
	p.firstPass()
	st := Stats{FirstPassHosts: p.usedHosts, FirstPassNodes: p.liveNodes()}
	errs := p.audit("first pass")
	if budget := opts.budget(); budget > 0 {
		p.improve(budget, &st)
		errs = append(errs, p.audit("improvement")...)
	}
	return p.result(st), errs
}

func (p *planner) audit(when string) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, when+": "+fmt.Sprintf(format, args...)) }
	var usedFree, slack vec
	classSlack := make([]vec, len(p.classes))
	used := 0
	onHost := map[[2]int32]int32{}
	onZone := map[string]int32{}
	for h := range p.hosts {
		s := &p.hs[h]
		free := p.hosts[h].cap
		for _, r := range s.vms {
			free = free.sub(p.reps[r].need)
			if p.reps[r].host != int32(h) {
				fail("vm replica %d listed on host %d says host %d", r, h, p.reps[r].host)
			}
		}
		for _, id := range s.nodes {
			free = free.sub(p.shapes[p.nodes[id].shape].cost)
			if p.nodes[id].host != int32(h) || !p.nodes[id].alive {
				fail("node %d listed on host %d says host %d, alive %v", id, h, p.nodes[id].host, p.nodes[id].alive)
			}
		}
		if free != s.free {
			fail("host %s: free %v, recomputed %v", p.hosts[h].name, s.free, free)
		}
		if int(s.items) != len(s.vms)+len(s.nodes) {
			fail("host %s: %d items, lists %d", p.hosts[h].name, s.items, len(s.vms)+len(s.nodes))
		}
		if s.closed {
			fail("host %s left closed", p.hosts[h].name)
		}
		if s.items > 0 {
			used++
			usedFree = usedFree.add(s.free)
		}
		for _, m := range s.member {
			g := p.groups[m.g]
			wantUsed, wantEmpty := vec{none, none}, s.free
			if s.items > 0 {
				wantUsed, wantEmpty = s.free, vec{none, none}
			}
			if got := treeValue(g.used, int(m.pos)); got != wantUsed {
				fail("host %s: used tree of group %d holds %v, want %v", p.hosts[h].name, m.g, got, wantUsed)
			}
			if got := treeValue(g.empty, int(m.pos)); got != wantEmpty {
				fail("host %s: empty tree of group %d holds %v, want %v", p.hosts[h].name, m.g, got, wantEmpty)
			}
		}
	}
	if used != p.usedHosts || usedFree != p.usedFree {
		fail("used hosts %d, free %v; recomputed %d, %v", p.usedHosts, p.usedFree, used, usedFree)
	}
	for id := range p.nodes {
		n := &p.nodes[id]
		cl := &p.classes[n.class]
		if !n.alive {
			if got := treeValue(cl.tree, int(n.slot)); got != (vec{none, none}) {
				fail("deleted node %d still in its class tree: %v", id, got)
			}
			continue
		}
		var u vec
		for _, r := range n.reps {
			u = u.add(p.reps[r].need)
			if p.reps[r].node != int32(id) || p.reps[r].host != n.host {
				fail("replica %d in node %d says node %d host %d", r, id, p.reps[r].node, p.reps[r].host)
			}
			w := &p.wl[p.reps[r].w]
			onHost[[2]int32{p.reps[r].w, n.host}]++
			onZone[fmt.Sprint(p.reps[r].w, "/", p.hosts[n.host].zone)]++
			if w.class != n.class {
				fail("replica %d of class %d in node %d of class %d", r, w.class, id, n.class)
			}
		}
		if u != n.used {
			fail("node %d: used %v, recomputed %v", id, n.used, u)
		}
		room := p.alloc(n).sub(n.used)
		if got := treeValue(cl.tree, int(n.slot)); got != room && (room.cpu >= 0 && room.mem >= 0) {
			fail("node %d: class tree holds %v, room is %v", id, got, room)
		}
		slack = slack.add(room)
		classSlack[n.class] = classSlack[n.class].add(room)
	}
	if slack != p.slack {
		fail("slack %v, recomputed %v", p.slack, slack)
	}
	for c := range p.classes {
		if classSlack[c] != p.classes[c].slack {
			fail("class %s: slack %v, recomputed %v", p.classes[c].name, p.classes[c].slack, classSlack[c])
		}
	}
	for r := range p.reps {
		rp := &p.reps[r]
		if rp.host >= 0 && rp.node < 0 {
			onHost[[2]int32{rp.w, rp.host}]++
			onZone[fmt.Sprint(rp.w, "/", p.hosts[rp.host].zone)]++
		}
		if (rp.host >= 0) == (rp.reason != "") {
			fail("replica %d: host %d, reason %q", r, rp.host, rp.reason)
		}
	}
	for wi := range p.wl {
		w := &p.wl[wi]
		for h, n := range w.onHost {
			if onHost[[2]int32{int32(wi), h}] != n {
				fail("workload %s: %d replicas on host %d, recomputed %d", w.name, n, h, onHost[[2]int32{int32(wi), h}])
			}
		}
		for z, n := range w.onZone {
			if onZone[fmt.Sprint(wi, "/", z)] != n {
				fail("workload %s: %d replicas in zone %s, recomputed %d", w.name, n, z, onZone[fmt.Sprint(wi, "/", z)])
			}
		}
	}
	return errs
}

func treeValue(t *fitTree, i int) vec { return vec{t.cpu[t.size+i], t.mem[t.size+i]} }
