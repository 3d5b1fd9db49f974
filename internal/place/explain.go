package place

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"strata.dev/strata/api/v1alpha1"
)

// maxRejections is how many rejected hosts an explanation lists; the rest are counted.
const maxRejections = 10

// explainer records, for the replicas of one workload, how each was placed, the hosts that
// were not chosen and why, and what happened to it later. Its methods do nothing on a nil
// explainer, so the planner calls them unconditionally.
type explainer struct {
	p    *planner
	w    int32 // the workload explained; -1 when there is none of that name
	recs map[int32]*record
}

// record is the story of one replica.
type record struct {
	d          decision
	ok         bool
	failedOnce bool // the first pass could not place it
	retried    bool // placed by the retry after improvement
	nodeShape  string
	nodeClass  string
	rejections []rejection
	steps      []step
}

type rejection struct {
	host   int32
	rank   int // categories that say more come first
	cat    string
	reason string
}

// step is a later change to where a replica is.
type step struct {
	why                string
	fromNode, toNode   int32
	fromHost, toHost   int32
	fromShape, toShape string // for a resize
}

// where a replica was before a change.
type where struct{ r, node, host int32 }

func newExplainer(p *planner, name string) *explainer {
	e := &explainer{p: p, w: -1, recs: map[int32]*record{}}
	for i := range p.wl {
		if p.wl[i].name == name {
			e.w = int32(i)
			break
		}
	}
	return e
}

func (e *explainer) tracks(r int32) bool {
	return e != nil && e.w >= 0 && e.p.reps[r].w == e.w
}

func (e *explainer) rec(r int32) *record {
	rc, ok := e.recs[r]
	if !ok {
		rc = &record{}
		e.recs[r] = rc
	}
	return rc
}

// decided records a decision about to be applied, and scans the hosts not chosen.
func (e *explainer) decided(r int32, d decision) {
	if !e.tracks(r) {
		return
	}
	rc := e.rec(r)
	rc.retried = rc.failedOnce
	rc.d, rc.ok = d, true
	if !e.p.wl[e.w].vm {
		c := e.p.wl[e.w].class
		rc.nodeClass = e.p.classes[c].name
		s := d.shape
		if d.node >= 0 {
			s = e.p.nodes[d.node].shape
		}
		rc.nodeShape = e.p.shapes[s].name
	}
	rc.rejections = e.scan(r, d, true)
}

// failed records that replica r could not be placed.
func (e *explainer) failed(r int32) {
	if !e.tracks(r) {
		return
	}
	rc := e.rec(r)
	rc.ok, rc.failedOnce = false, true
	rc.rejections = e.scan(r, decision{host: -1, node: -1}, false)
}

// snapshot notes where the tracked replicas among reps are, before a change.
func (e *explainer) snapshot(reps []int32) []where {
	if e == nil || e.w < 0 {
		return nil
	}
	var snap []where
	for _, r := range reps {
		if e.tracks(r) {
			snap = append(snap, where{r, e.p.reps[r].node, e.p.reps[r].host})
		}
	}
	return snap
}

// moved records a step for each replica of snap that is no longer where it was.
func (e *explainer) moved(snap []where, why string) {
	for _, s := range snap {
		rp := &e.p.reps[s.r]
		if rp.node != s.node || rp.host != s.host {
			e.rec(s.r).steps = append(e.rec(s.r).steps, step{why: why, fromNode: s.node, toNode: rp.node, fromHost: s.host, toHost: rp.host})
		}
	}
}

// resized records that the node VM of the replicas of snap changed shape.
func (e *explainer) resized(snap []where, from, to string) {
	for _, s := range snap {
		e.rec(s.r).steps = append(e.rec(s.r).steps, step{why: "resized", fromNode: s.node, toNode: s.node, fromHost: s.host, toHost: s.host, fromShape: from, toShape: to})
	}
}

// Rejection categories, most telling first.
const (
	catSelector = "hostSelector does not match"
	catSpread   = "spread: already holds a replica"
	catRoom     = "not enough room"
	catNoNode   = "no node VM of the class with room (a new one would fit)"
	catPast     = "has room, but past the candidates compared"
	catLoose    = "has room, but fits less tightly"
	catEmpty    = "has room, but is empty"
)

var catRank = map[string]int{catSelector: 0, catSpread: 1, catRoom: 2, catNoNode: 3, catPast: 4, catLoose: 5, catEmpty: 6}

// scan says, for every host but the chosen one, why it was not chosen for replica r.
func (e *explainer) scan(r int32, d decision, ok bool) []rejection {
	p := e.p
	rp := &p.reps[r]
	w := &p.wl[rp.w]
	// For container and sandbox replicas: the best open node VM of the class with room, per host.
	nodeRoom := map[int32]float64{}
	var size vec
	sizeWhat := ""
	if w.vm {
		size, sizeWhat = rp.need, "a VM of "+fmtVec(rp.need)
		if p.vmOverhead != (vec{}) {
			sizeWhat += " with overhead"
		}
	} else {
		for _, id := range p.classes[w.class].nodes {
			n := &p.nodes[id]
			if n.alive && rp.need.fits(p.alloc(n).sub(n.used)) {
				s := p.nodeScore(id, rp.need)
				if old, seen := nodeRoom[n.host]; !seen || s < old {
					nodeRoom[n.host] = s
				}
			}
		}
		s := d.shape
		if !ok || d.node >= 0 {
			s = p.openShape(w.class, rp.need, 1)
		}
		if s >= 0 {
			size, sizeWhat = p.shapes[s].cost, fmt.Sprintf("a new node VM of shape %s (%s with overhead)", p.shapes[s].name, fmtVec(p.shapes[s].cost))
		}
	}
	hasRoom := func(h int32) bool { _, has := nodeRoom[h]; return has }
	var out []rejection
	add := func(h int32, cat, reason string) {
		out = append(out, rejection{host: h, rank: catRank[cat], cat: cat, reason: reason})
	}
	for _, h := range p.byDecl {
		if ok && h == d.host {
			continue
		}
		hs := &p.hs[h]
		ho := &p.hosts[h]
		switch {
		case len(w.sel) > 0 && !matches(w.sel, ho.labels):
			add(h, catSelector, "labels "+fmtLabels(ho.labels)+" do not match hostSelector "+fmtLabels(w.sel))
		case p.conflicts(w, h):
			add(h, catSpread, e.conflictText(w, h))
		case !w.vm && ok && d.node >= 0:
			if s, has := nodeRoom[h]; has {
				e.compare(add, h, s, d, "holds a node VM of class "+p.classes[w.class].name+" with room")
			} else if size.positive() && size.fits(hs.free) {
				add(h, catNoNode, "has no node VM of class "+p.classes[w.class].name+" with room; a new node VM would fit, but joining an open one avoids creating it")
			} else {
				add(h, catRoom, "has no node VM of class "+p.classes[w.class].name+" with room, and "+e.shortText(h, size, sizeWhat))
			}
		case !w.vm && hasRoom(h):
			add(h, catPast, "holds a node VM of class "+p.classes[w.class].name+" with room, past the candidates compared")
		case size.positive() && size.fits(hs.free):
			switch {
			case ok && hs.items == 0 && d.newHost:
				add(h, catEmpty, "has room, but is empty, and empty hosts are taken largest first, then in fleet order")
			case ok && hs.items == 0:
				add(h, catEmpty, "has room, but is empty, and a used host had room")
			case ok && !d.newHost:
				e.compare(add, h, p.hostScore(h, size), d, "has room")
			default:
				add(h, catPast, "has room, but was past the candidates compared")
			}
		default:
			prefix := ""
			if !w.vm {
				prefix = "has no node VM of class " + p.classes[w.class].name + " with room, and "
			}
			add(h, catRoom, prefix+e.shortText(h, size, sizeWhat))
		}
	}
	return out
}

func (e *explainer) compare(add func(int32, string, string), h int32, s float64, d decision, what string) {
	if s < d.score {
		add(h, catPast, fmt.Sprintf("%s and a tighter fit (score %s) but was past the %d candidates compared", what, fmtScore(s), d.compared))
		return
	}
	add(h, catLoose, fmt.Sprintf("%s, but fits less tightly (score %s against %s)", what, fmtScore(s), fmtScore(d.score)))
}

func (e *explainer) shortText(h int32, size vec, what string) string {
	free := e.p.hs[h].free
	return fmt.Sprintf("has %s free, %s short of %s", fmtVec(free), fmtShort(size.shortOf(free)), what)
}

func (e *explainer) conflictText(w *workload, h int32) string {
	p := e.p
	ho := &p.hosts[h]
	if w.spread == v1alpha1.SpreadZone && !ho.zoned {
		return "has no zone label, and " + w.name + " is spread over zones"
	}
	for _, r := range w.reps {
		rh := p.reps[r].host
		if rh < 0 {
			continue
		}
		if w.spread == v1alpha1.SpreadHost && rh == h {
			return "already holds replica " + strconv.Itoa(int(p.reps[r].idx)) + " of " + w.name + " (spread host)"
		}
		if w.spread == v1alpha1.SpreadZone && p.hosts[rh].zone == ho.zone {
			return "zone " + ho.zone + " already holds replica " + strconv.Itoa(int(p.reps[r].idx)) + " of " + w.name + " (spread zone)"
		}
	}
	return "holds a replica of " + w.name + " (spread " + string(w.spread) + ")"
}

func fmtScore(s float64) string { return strconv.FormatFloat(round4(s), 'f', -1, 64) }

// explanations renders the records, with the plan's final node names.
func (e *explainer) explanations(nodeName []string) []v1alpha1.ReplicaExplanation {
	if e == nil || e.w < 0 {
		return nil
	}
	p := e.p
	w := &p.wl[e.w]
	name := func(id int32) string {
		if id >= 0 && nodeName[id] != "" {
			return nodeName[id]
		}
		return "a node VM since removed"
	}
	out := make([]v1alpha1.ReplicaExplanation, 0, len(w.reps))
	for _, r := range w.reps {
		rp := &p.reps[r]
		x := v1alpha1.ReplicaExplanation{Workload: w.name, Replica: rp.idx, Tier: w.tier}
		if rp.host >= 0 {
			x.Host = p.hosts[rp.host].name
			if rp.node >= 0 {
				x.Node = name(rp.node)
			}
		}
		rc := e.recs[r]
		if rc == nil || !rc.ok {
			x.Decision = "not placed: " + rp.reason
		} else {
			x.Decision = e.decisionText(rc, name)
			if !rc.d.newHost {
				x.Score = round4(rc.d.score)
			}
		}
		if rc != nil {
			for _, s := range rc.steps {
				x.Steps = append(x.Steps, e.stepText(s, name))
			}
			x.Rejected, x.RejectedCounts = summarize(p, rc.rejections)
		}
		out = append(out, x)
	}
	return out
}

func (e *explainer) decisionText(rc *record, name func(int32) string) string {
	p := e.p
	d := rc.d
	host := p.hosts[d.host].name
	prefix := ""
	if rc.retried {
		prefix = "after the improvement steps made room: "
	}
	where := fmt.Sprintf("the tightest fit (score %s) of the %d used %s with room compared", fmtScore(d.score), d.compared, plural(d.compared, "host", "hosts"))
	if d.newHost {
		where = "an empty host (empty hosts are taken largest first, then in fleet order): no used host had room"
	}
	switch {
	case e.p.wl[e.w].vm:
		return prefix + fmt.Sprintf("placed on %s, %s", host, where)
	case d.node >= 0:
		return prefix + fmt.Sprintf("joined %s (shape %s, class %s) on %s, the tightest fit (score %s) of the %d open node %s of its class with room compared",
			name(d.node), rc.nodeShape, rc.nodeClass, host, fmtScore(d.score), d.compared, plural(d.compared, "VM", "VMs"))
	case d.filler:
		return prefix + fmt.Sprintf("opened a node VM of the smaller shape %s (class %s) in the room left on %s (score %s): no open node VM of its class had room, and the preferred shape fits on no used host",
			rc.nodeShape, rc.nodeClass, host, fmtScore(d.score))
	default:
		return prefix + fmt.Sprintf("opened a node VM of shape %s (class %s) on %s, %s; no open node VM of its class had room",
			rc.nodeShape, rc.nodeClass, host, where)
	}
}

func (e *explainer) stepText(s step, name func(int32) string) string {
	p := e.p
	if s.why == "resized" {
		return fmt.Sprintf("its node VM was resized from %s to %s, the cheapest shape that holds its replicas", s.fromShape, s.toShape)
	}
	if s.toHost < 0 {
		return "left " + p.hosts[s.fromHost].name + " " + s.why
	}
	if s.fromNode >= 0 && s.fromNode == s.toNode {
		return fmt.Sprintf("moved with its node VM from %s to %s %s", p.hosts[s.fromHost].name, p.hosts[s.toHost].name, s.why)
	}
	if s.toNode >= 0 {
		return fmt.Sprintf("moved from a node VM on %s into %s on %s %s", p.hosts[s.fromHost].name, name(s.toNode), p.hosts[s.toHost].name, s.why)
	}
	return fmt.Sprintf("moved from %s to %s %s", p.hosts[s.fromHost].name, p.hosts[s.toHost].name, s.why)
}

// summarize keeps the first maxRejections rejections, most telling first, and counts them all.
func summarize(p *planner, rs []rejection) ([]v1alpha1.HostRejection, []v1alpha1.RejectionCount) {
	if len(rs) == 0 {
		return nil, nil
	}
	sorted := slices.Clone(rs)
	slices.SortStableFunc(sorted, func(a, b rejection) int { return cmp.Compare(a.rank, b.rank) })
	var shown []v1alpha1.HostRejection
	for _, r := range sorted[:min(len(sorted), maxRejections)] {
		shown = append(shown, v1alpha1.HostRejection{Host: p.hosts[r.host].name, Reason: r.reason})
	}
	counts := map[string]int{}
	for _, r := range rs {
		counts[r.cat]++
	}
	var out []v1alpha1.RejectionCount
	for cat, n := range counts {
		out = append(out, v1alpha1.RejectionCount{Reason: cat, Hosts: n})
	}
	slices.SortFunc(out, func(a, b v1alpha1.RejectionCount) int {
		return cmp.Or(cmp.Compare(b.Hosts, a.Hosts), cmp.Compare(catRank[a.Reason], catRank[b.Reason]))
	})
	return shown, out
}
