package place

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"strata.dev/strata/api/v1alpha1"
)

// noHost is "no host", or "no host matching hostSelector {zone: a}" when w has a selector.
func noHost(w *workload) string {
	if len(w.sel) == 0 {
		return "no host"
	}
	return "no host matching hostSelector " + fmtLabels(w.sel)
}

// hostsPhrase names the hosts w may use: "hosts" or "hosts matching hostSelector {zone: a}".
func hostsPhrase(w *workload) string {
	if len(w.sel) == 0 {
		return "hosts"
	}
	return "hosts matching hostSelector " + fmtLabels(w.sel)
}

func (p *planner) overheadPhrase(v vec) string {
	if v == (vec{}) {
		return ""
	}
	return " plus " + fmtVec(v) + " VM overhead"
}

// staticReason is why no replica of w can ever be placed, whatever else the plan holds, or "".
func (p *planner) staticReason(w *workload, need vec) string {
	if !w.tier.Valid() {
		return fmt.Sprintf("tier %q is not container, sandbox or vm", w.tier)
	}
	g := p.groups[w.group]
	if len(g.hosts) == 0 {
		if len(p.hosts) == 0 {
			return "the fleet has no hosts"
		}
		return "no host matches hostSelector " + fmtLabels(w.sel)
	}
	if w.vm {
		if h, ok := p.closestCap(g.hosts, need); !ok {
			return fmt.Sprintf("%s is big enough for a VM of %s%s: the closest, %s, has %s (short by %s)",
				noHost(w), fmtVec(need.sub(p.vmOverhead)), p.overheadPhrase(p.vmOverhead), p.hosts[h].name,
				fmtVec(p.hosts[h].cap), fmtShort(need.shortOf(p.hosts[h].cap)))
		}
		return ""
	}
	if len(p.shapes) == 0 {
		return "the fleet has no nodeShapes, and container and sandbox replicas run in node VMs made from them"
	}
	var holding []int32
	for s := range p.shapes {
		if need.fits(p.shapes[s].alloc) {
			holding = append(holding, int32(s))
		}
	}
	if len(holding) == 0 {
		s := p.closestShape(need)
		with := ""
		if w.tier == v1alpha1.TierSandbox && p.sbOverhead != (vec{}) {
			with = " with the sandbox overhead"
		}
		return fmt.Sprintf("the replica needs %s%s but the largest node shape, %s, allocates %s (%s less nodeReserved %s)",
			fmtVec(need), with, p.shapes[s].name, fmtVec(p.shapes[s].alloc), fmtVec(p.shapes[s].size), fmtVec(p.reserved))
	}
	for _, s := range holding {
		if _, ok := p.closestCap(g.hosts, p.shapes[s].cost); ok {
			return ""
		}
	}
	s := slices.MinFunc(holding, func(a, b int32) int {
		return cmpFloat(p.shapeCost(a), p.shapeCost(b))
	})
	h, _ := p.closestCap(g.hosts, p.shapes[s].cost)
	return fmt.Sprintf("no node shape that holds the replica fits on any of the %s: the smallest, %s (%s%s), is short by %s on the closest, %s (%s)",
		hostsPhrase(w), p.shapes[s].name, fmtVec(p.shapes[s].size), p.overheadPhrase(p.vmOverhead),
		fmtShort(p.shapes[s].cost.shortOf(p.hosts[h].cap)), p.hosts[h].name, fmtVec(p.hosts[h].cap))
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// closestCap finds a host among hosts whose capacity holds need; else the one whose capacity
// falls least short of it (by the sum of its shares short), and false.
func (p *planner) closestCap(hosts []int32, need vec) (int32, bool) {
	best, bestShort := int32(-1), math.Inf(1)
	for _, h := range hosts {
		if need.fits(p.hosts[h].cap) {
			return h, true
		}
		c, m := need.shortOf(p.hosts[h].cap).frac(need)
		if s := c + m; s < bestShort {
			best, bestShort = h, s
		}
	}
	return best, false
}

// closestShape is the shape whose allocatable capacity falls least short of need.
func (p *planner) closestShape(need vec) int {
	best, bestShort := 0, math.Inf(1)
	for s := range p.shapes {
		c, m := need.shortOf(p.shapes[s].alloc).frac(need)
		if short := c + m; short < bestShort {
			best, bestShort = s, short
		}
	}
	return best
}

// spreadReason is why replica i of n of w can never be placed because of its spread, or "".
func (p *planner) spreadReason(w *workload, i, n int32) string {
	g := p.groups[w.group]
	switch w.spread {
	case v1alpha1.SpreadHost:
		if int(i) >= len(g.hosts) {
			return fmt.Sprintf("spread host: %d replicas but only %d %s", n, len(g.hosts), pluralHosts(len(g.hosts), w))
		}
	case v1alpha1.SpreadZone:
		if int(i) < len(g.zones) {
			return ""
		}
		unzoned := ""
		for _, h := range g.hosts {
			if !p.hosts[h].zoned {
				unzoned = "; hosts without a zone label do not count"
				break
			}
		}
		if len(g.zones) == 0 {
			return fmt.Sprintf("spread zone: none of the %s has a zone label", hostsPhrase(w))
		}
		return fmt.Sprintf("spread zone: %d replicas but the %s span only %d %s (%s)%s",
			n, hostsPhrase(w), len(g.zones), plural(len(g.zones), "zone", "zones"), strings.Join(g.zones, ", "), unzoned)
	}
	return ""
}

func pluralHosts(n int, w *workload) string {
	if len(w.sel) == 0 {
		return plural(n, "host", "hosts") + " in the fleet"
	}
	return plural(n, "host matches", "hosts match") + " hostSelector " + fmtLabels(w.sel)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// whyNot explains why replica r cannot be placed now: which constraint stops it, and by how
// much the closest host falls short.
func (p *planner) whyNot(r int32) string {
	rp := &p.reps[r]
	w := &p.wl[rp.w]
	g := p.groups[w.group]
	size, what := rp.need, "a VM of "+fmtVec(rp.need.sub(p.vmOverhead))+p.overheadPhrase(p.vmOverhead)
	prefix := ""
	if !w.vm {
		s := p.openShape(w.class, rp.need, 1)
		if s < 0 {
			return "no node shape holds the replica"
		}
		size = p.shapes[s].cost
		what = fmt.Sprintf("a new node VM of shape %s (%s%s)", p.shapes[s].name, fmtVec(p.shapes[s].size), p.overheadPhrase(p.vmOverhead))
		prefix = fmt.Sprintf("no node VM of class %s has %s free, and ", p.classes[w.class].name, fmtVec(rp.need))
	}
	closest, bestShort := int32(-1), math.Inf(1)
	blocked := 0 // hosts with room that the spread rules out
	for _, h := range g.hosts {
		roomy := size.fits(p.hs[h].free)
		if p.conflicts(w, h) {
			if roomy {
				blocked++
			}
			continue
		}
		c, m := size.shortOf(p.hs[h].free).frac(size)
		if s := c + m; s < bestShort {
			closest, bestShort = h, s
		}
	}
	var b strings.Builder
	b.WriteString(prefix)
	if closest < 0 {
		if w.spread == v1alpha1.SpreadZone {
			fmt.Fprintf(&b, "every zone of the %s already holds a replica of %s, and hosts without a zone label take none (spread zone: %s)",
				hostsPhrase(w), w.name, p.spreadHolders(w))
		} else {
			fmt.Fprintf(&b, "every one of the %d %s already holds a replica of %s (spread host: %s)",
				len(g.hosts), hostsPhrase(w), w.name, p.spreadHolders(w))
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%s has room for %s: the closest, %s, has %s free (short by %s)",
		noHost(w), what, p.hosts[closest].name, fmtVec(p.hs[closest].free), fmtShort(size.shortOf(p.hs[closest].free)))
	if blocked > 0 {
		if w.spread == v1alpha1.SpreadHost {
			fmt.Fprintf(&b, "; %d %s with room already %s a replica of %s (spread host)",
				blocked, plural(blocked, "host", "hosts"), plural(blocked, "holds", "hold"), w.name)
		} else {
			fmt.Fprintf(&b, "; %d %s with room %s in a zone that already holds a replica of %s, or %s no zone (spread zone)",
				blocked, plural(blocked, "host", "hosts"), plural(blocked, "is", "are"), w.name, plural(blocked, "has", "have"))
		}
	}
	return b.String()
}

// spreadHolders lists where w's replicas are: "replica 0 on h1, replica 1 on h2" (or "in zone
// a"), at most five and a count of the rest.
func (p *planner) spreadHolders(w *workload) string {
	var parts []string
	more := 0
	for _, r := range w.reps {
		if h := p.reps[r].host; h >= 0 {
			if len(parts) == 5 {
				more++
				continue
			}
			where := " on " + p.hosts[h].name
			if w.spread == v1alpha1.SpreadZone {
				where = " in zone " + p.hosts[h].zone
			}
			parts = append(parts, "replica "+strconv.Itoa(int(p.reps[r].idx))+where)
		}
	}
	if more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", more))
	}
	return strings.Join(parts, ", ")
}
