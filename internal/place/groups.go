package place

import (
	"maps"
	"slices"

	"strata.dev/strata/api/v1alpha1"
)

// Search limits. A search compares at most this many candidates that fit and passes over at
// most maxSkips that fit but break a constraint; this keeps each decision fast on large fleets
// at a small cost in quality, which the improvement steps win back.
const (
	hostCandidates = 8
	nodeCandidates = 4
	maxSkips       = 1024
)

// groupFor returns the group of hosts matching sel, creating it on first use.
func (p *planner) groupFor(sel map[string]string) int32 {
	key := selectorKey(sel)
	if g, ok := p.groupOf[key]; ok {
		return g
	}
	g := &group{sel: maps.Clone(sel)}
	zones := map[string]bool{}
	for h := range p.hosts {
		if matches(sel, p.hosts[h].labels) {
			g.hosts = append(g.hosts, int32(h))
			if p.hosts[h].zoned {
				zones[p.hosts[h].zone] = true
			}
		}
	}
	g.zones = slices.Sorted(maps.Keys(zones))
	g.zoneGroup = make([]int32, len(g.zones))
	for i := range g.zoneGroup {
		g.zoneGroup[i] = -1
	}
	g.used, g.empty = newFitTree(len(g.hosts)), newFitTree(len(g.hosts))
	id := int32(len(p.groups))
	p.groups = append(p.groups, g)
	p.groupOf[key] = id
	for pos, h := range g.hosts {
		p.hs[h].member = append(p.hs[h].member, membership{g: id, pos: int32(pos)})
	}
	for _, h := range g.hosts {
		p.refresh(h)
	}
	return id
}

// zoneGroup returns the group of g's hosts in its i-th zone.
func (p *planner) zoneGroup(g int32, i int) int32 {
	if z := p.groups[g].zoneGroup[i]; z >= 0 {
		return z
	}
	sel := maps.Clone(p.groups[g].sel)
	if sel == nil {
		sel = map[string]string{}
	}
	sel[ZoneLabel] = p.groups[g].zones[i]
	z := p.groupFor(sel)
	p.groups[g].zoneGroup[i] = z
	return z
}

// searchGroups lists the groups a replica of w may go to: its selector's, or for spread: zone,
// one per zone that holds none of its replicas yet.
func (p *planner) searchGroups(w *workload) []int32 {
	if w.spread != v1alpha1.SpreadZone {
		return []int32{w.group}
	}
	var gs []int32
	for i, z := range p.groups[w.group].zones {
		if w.onZone[z] == 0 {
			gs = append(gs, p.zoneGroup(w.group, i))
		}
	}
	return gs
}

// hostChoice is a host found for an item.
type hostChoice struct {
	host     int32
	score    float64
	newHost  bool // the host was empty
	compared int  // candidates compared
}

// hostScore is how much room host h keeps after taking need, squared and normalized by its
// capacity: lower is a tighter fit.
func (p *planner) hostScore(h int32, need vec) float64 {
	c, m := p.hs[h].free.sub(need).frac(p.hosts[h].cap)
	return c*c + m*m
}

// findHost finds the best host among groups gs for an item of size need that ok allows: the
// tightest fit (hostScore) among the first hostCandidates used hosts that hold it, in host
// order from the first host after host after (wrapping around; -1 for the start); else,
// unless usedOnly, the first empty host that holds it (the largest).
//
// Starting after a host lets a workload spread over hosts resume where its last replica went,
// instead of passing over every host that already holds one of its replicas each time.
func (p *planner) findHost(gs []int32, need vec, usedOnly bool, after int32, ok func(h int32) bool) (hostChoice, bool) {
	best := hostChoice{host: -1}
	for _, gi := range gs {
		g := p.groups[gi]
		start := 0
		if after >= 0 {
			start, _ = slices.BinarySearch(g.hosts, after+1)
		}
		found, skips := 0, 0
	scan:
		for _, span := range [2][2]int{{start, len(g.hosts)}, {0, start}} {
			for pos := g.used.next(span[0], need); pos >= 0 && pos < span[1]; pos = g.used.next(pos+1, need) {
				h := g.hosts[pos]
				if !ok(h) {
					if skips++; skips > p.skipLimit {
						break scan
					}
					continue
				}
				s := p.hostScore(h, need)
				best.compared++
				if best.host < 0 || s < best.score || (s == best.score && h < best.host) {
					best.host, best.score = h, s
				}
				if found++; found >= hostCandidates {
					break scan
				}
			}
		}
	}
	if best.host >= 0 || usedOnly {
		return best, best.host >= 0
	}
	for _, gi := range gs {
		g := p.groups[gi]
		for pos := g.empty.next(0, need); pos >= 0; pos = g.empty.next(pos+1, need) {
			h := g.hosts[pos]
			if !ok(h) {
				continue
			}
			if best.host < 0 || h < best.host {
				best = hostChoice{host: h, score: p.hostScore(h, need), newHost: true, compared: 1}
			}
			break
		}
	}
	return best, best.host >= 0
}

// nodeScore is how much room node VM id keeps after taking need, squared and normalized by
// what it allocates.
func (p *planner) nodeScore(id int32, need vec) float64 {
	n := &p.nodes[id]
	return fitScore(p.alloc(n), n.used, need)
}

// findNode finds the open node VM of class c that best fits need: the tightest among the first
// nodeCandidates with room that ok allows, in creation order from the slot after after
// (wrapping around; -1 for the start).
func (p *planner) findNode(c int32, need vec, after int32, ok func(id int32) bool) (id int32, score float64, compared int) {
	cl := &p.classes[c]
	id = -1
	found, skips := 0, 0
	start := int(after) + 1
scan:
	for _, span := range [2][2]int{{start, len(cl.nodes)}, {0, start}} {
		for pos := cl.tree.next(span[0], need); pos >= 0 && pos < span[1]; pos = cl.tree.next(pos+1, need) {
			n := cl.nodes[pos]
			if !ok(n) {
				if skips++; skips > p.skipLimit {
					break scan
				}
				continue
			}
			s := p.nodeScore(n, need)
			compared++
			if id < 0 || s < score {
				id, score = n, s
			}
			if found++; found >= nodeCandidates {
				break scan
			}
		}
	}
	return id, score, compared
}
