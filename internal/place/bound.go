package place

import (
	"math"
	"slices"
)

// lowerBound is a number of hosts that no plan placing the same replicas can go below:
//
//   - capacity: for the hosts matching each selector in use (and for all hosts), the replicas
//     that must run on them need at least the fewest of those hosts, largest first, whose
//     capacities add up to their demand, per resource. The demand counts a VM's overhead
//     exactly, and for a class's container and sandbox replicas the fewest node VMs they could
//     fill (their demand over the largest allocatable shape), each with nodeReserved and the VM
//     overhead, and each costing no less than the cheapest shape;
//   - node VMs: the container and sandbox replicas that must run on those hosts need node VMs
//     allocating their demand, and no host can carry node VMs allocating more than the best
//     mix of shapes that fits on it (a small knapsack per kind of host);
//   - spread: a workload spread over hosts or zones needs a host per replica placed, and a
//     node VM of its class per replica;
//   - selectors together: for selectors whose hosts do not overlap, the hosts each one needs
//     add up, and whatever demand the largest of those hosts cannot hold needs further hosts,
//     as few as the largest hosts of the fleet that hold it;
//   - one host as soon as anything is placed.
//
// It is valid for fleets of unequal hosts because it takes the largest hosts first.
func (p *planner) lowerBound() int {
	var maxAlloc vec
	minCost := vec{math.MaxInt64, math.MaxInt64}
	for _, s := range p.shapes {
		if s.alloc.positive() {
			maxAlloc = maxAlloc.max(s.alloc)
			minCost = vec{min(minCost.cpu, s.cost.cpu), min(minCost.mem, s.cost.mem)}
		}
	}
	nodeTax := p.reserved.add(p.vmOverhead)
	placed := make([]int64, len(p.wl))
	sels := map[string]map[string]string{"": nil}
	bound := 0
	for wi := range p.wl {
		w := &p.wl[wi]
		for _, r := range w.reps {
			if p.reps[r].host >= 0 {
				placed[wi]++
			}
		}
		if placed[wi] == 0 {
			continue
		}
		bound = max(bound, 1)
		if w.spread != "" {
			bound = max(bound, int(placed[wi]))
		}
		sels[selectorKey(w.sel)] = w.sel
	}
	keys := make([]string, 0, len(sels))
	for k := range sels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var total vec
	var parts []part
	for _, k := range keys {
		sel := sels[k]
		var demand vec
		classDemand := map[int32]vec{}
		classNodes := map[int32]int64{}
		for wi := range p.wl {
			w := &p.wl[wi]
			if placed[wi] == 0 || !implies(w.sel, sel) {
				continue
			}
			need := satScale(p.reps[w.reps[0]].need, placed[wi])
			if w.vm {
				demand = satAdd(demand, need)
			} else {
				classDemand[w.class] = satAdd(classDemand[w.class], need)
				if w.spread != "" {
					classNodes[w.class] = max(classNodes[w.class], placed[wi])
				}
			}
		}
		var containers vec
		for c, d := range classDemand {
			nodes := max(ceilDiv(d.cpu, maxAlloc.cpu), ceilDiv(d.mem, maxAlloc.mem), classNodes[c])
			demand = satAdd(demand, satAdd(d, satScale(nodeTax, nodes)).max(satScale(minCost, nodes)))
			containers = satAdd(containers, d)
		}
		hosts := p.groups[p.groupFor(sel)].hosts
		k := p.hostsToHold(hosts, demand)
		if containers != (vec{}) {
			k = max(k, p.hostsForNodes(hosts, containers))
		}
		for wi := range p.wl {
			if w := &p.wl[wi]; w.spread != "" && implies(w.sel, sel) {
				k = max(k, int(placed[wi]))
			}
		}
		bound = max(bound, k)
		if len(sel) == 0 {
			total = demand
		} else if k > 0 {
			parts = append(parts, part{hosts: hosts, need: k})
		}
	}
	return max(bound, p.disjointBound(parts, total))
}

// part is a set of hosts that some replicas are bound to, and how many of them they need.
type part struct {
	hosts []int32
	need  int
}

// disjointBound adds up what selectors with disjoint hosts need: taking parts greedily, most
// hosts needed first, while they do not overlap, the plan needs their hosts plus further
// hosts for the rest of the total demand. The further hosts are distinct hosts of the fleet,
// so they hold no more than as many of its largest hosts.
func (p *planner) disjointBound(parts []part, total vec) int {
	slices.SortStableFunc(parts, func(a, b part) int { return b.need - a.need })
	taken := make([]bool, len(p.hosts))
	hosts := 0
	var held vec
	for _, pt := range parts {
		if slices.ContainsFunc(pt.hosts, func(h int32) bool { return taken[h] }) {
			continue
		}
		for _, h := range pt.hosts {
			taken[h] = true
		}
		hosts += pt.need
		held = satAdd(held, p.largest(pt.hosts, pt.need))
	}
	rest := total.sub(held).max(vec{})
	all := p.groups[p.groupFor(nil)].hosts
	return hosts + p.hostsToHold(all, rest)
}

// largest is the capacity of the k largest of hosts, per resource.
func (p *planner) largest(hosts []int32, k int) vec {
	var out vec
	for d := range 2 {
		caps := make([]int64, len(hosts))
		for i, h := range hosts {
			caps[i] = pick(p.hosts[h].cap, d)
		}
		slices.SortFunc(caps, func(a, b int64) int { return int(sign(b - a)) })
		var sum int64
		for _, c := range caps[:min(k, len(caps))] {
			sum = satPlus(sum, c)
		}
		if d == 0 {
			out.cpu = sum
		} else {
			out.mem = sum
		}
	}
	return out
}

// hostsForNodes is the fewest of hosts that could carry node VMs allocating demand: each host
// carries at most its best mix of shapes, per resource, largest first.
func (p *planner) hostsForNodes(hosts []int32, demand vec) int {
	best := map[vec]vec{}
	need := 0
	for d := range 2 {
		carry := make([]int64, len(hosts))
		for i, h := range hosts {
			c := p.hosts[h].cap
			m, ok := best[c]
			if !ok {
				m = vec{p.bestMix(c, 0), p.bestMix(c, 1)}
				best[c] = m
			}
			carry[i] = pick(m, d)
		}
		slices.SortFunc(carry, func(a, b int64) int { return int(sign(b - a)) })
		want, sum, k := pick(demand, d), int64(0), 0
		for k < len(carry) && sum < want {
			sum = satPlus(sum, carry[k])
			k++
		}
		if sum < want {
			k = len(hosts) // cannot happen for replicas that are placed; stay valid anyway
		}
		need = max(need, k)
	}
	return need
}

func pick(v vec, d int) int64 {
	if d == 0 {
		return v.cpu
	}
	return v.mem
}

// bestMixWork bounds the search of bestMix; past it, the bound falls back to the best
// allocatable-per-cost ratio, which is weaker but still an upper bound.
const bestMixWork = 100000

// bestMix is an upper bound on the allocatable capacity in resource d of node VMs that fit
// together on a host of capacity c: an exact search over the counts of each shape (a small
// two-constraint knapsack), pruned by the best ratio of allocatable to cost.
func (p *planner) bestMix(c vec, d int) int64 {
	var shapes []shape
	ratio := 0.0
	for _, s := range p.shapes {
		if s.alloc.positive() && s.cost.fits(c) {
			shapes = append(shapes, s)
			ratio = max(ratio, float64(pick(s.alloc, d))/float64(pick(s.cost, d)))
		}
	}
	// Rounded up, with a margin for floating point, so that it never falls below the truth.
	fractional := func(room vec) int64 { return int64(math.Ceil(ratio*float64(pick(room, d)))) + 1 }
	bestFound, work := int64(0), 0
	var search func(i int, room vec, acc int64) bool
	search = func(i int, room vec, acc int64) bool {
		if work++; work > bestMixWork {
			return false
		}
		if acc > bestFound {
			bestFound = acc
		}
		if i == len(shapes) || acc+fractional(room) <= bestFound {
			return true
		}
		s := shapes[i]
		most := min(room.cpu/s.cost.cpu, room.mem/s.cost.mem)
		for k := most; k >= 0; k-- {
			if !search(i+1, room.sub(s.cost.scale(k)), acc+k*pick(s.alloc, d)) {
				return false
			}
		}
		return true
	}
	if !search(0, c, 0) {
		return fractional(c)
	}
	return bestFound
}

// hostsToHold is the fewest of hosts, largest first, whose capacities add up to demand in
// each resource (all of them when they do not).
func (p *planner) hostsToHold(hosts []int32, demand vec) int {
	need := 0
	for _, dim := range []func(vec) int64{func(v vec) int64 { return v.cpu }, func(v vec) int64 { return v.mem }} {
		caps := make([]int64, len(hosts))
		for i, h := range hosts {
			caps[i] = dim(p.hosts[h].cap)
		}
		slices.SortFunc(caps, func(a, b int64) int { return int(sign(b - a)) })
		want, sum, k := dim(demand), int64(0), 0
		for k < len(caps) && sum < want {
			sum = satPlus(sum, caps[k])
			k++
		}
		need = max(need, k)
	}
	return need
}

func sign(x int64) int64 {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

func ceilDiv(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return (a-1)/b + 1
}

// satPlus adds without overflowing: sums that would pass math.MaxInt64 stop there.
func satPlus(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func satAdd(a, b vec) vec { return vec{satPlus(a.cpu, b.cpu), satPlus(a.mem, b.mem)} }

func satScale(v vec, n int64) vec {
	mul := func(a int64) int64 {
		if n != 0 && a > math.MaxInt64/n {
			return math.MaxInt64
		}
		return a * n
	}
	return vec{mul(v.cpu), mul(v.mem)}
}
