package place

import (
	"slices"

	"strata.dev/strata/api/v1alpha1"
)

// planner is the working state of one Plan call. Hosts are numbered in planning order
// (largest first, then fleet order); node VMs and replicas by creation.
type planner struct {
	hosts  []host
	hs     []hostState
	byDecl []int32 // host numbers in fleet order
	maxCap vec     // the largest capacity of any host, per resource

	shapes     []shape
	vmOverhead vec
	sbOverhead vec
	reserved   vec

	wl      []workload
	reps    []replica
	nodes   []node
	classes []class
	classOf map[string]int32

	groups  []*group
	groupOf map[string]int32

	usedHosts int // hosts holding anything
	usedFree  vec // free capacity summed over used, open hosts
	slack     vec // room left in node VMs, summed over all of them
	undo      []func()
	logging   bool // record undo steps

	explain   *explainer // nil unless a workload is explained
	skipLimit int        // maxSkips, or no limit for a last try
	byCost    []int32    // usable shapes, costliest first
}

// hostState is what the plan has put on a host.
type hostState struct {
	free   vec
	items  int32   // VMs and node VMs on it
	vms    []int32 // vm replicas
	nodes  []int32 // node VMs
	closed bool    // being drained: no search finds it
	member []membership
}

// membership places a host in a group's trees.
type membership struct{ g, pos int32 }

// group is the hosts that match one selector, with two capacity trees over them: one for
// hosts in use, one for empty hosts. A host is in exactly one of the two (or neither while it
// is being drained).
type group struct {
	sel         map[string]string
	hosts       []int32
	used, empty *fitTree
	zones       []string // the zones of its hosts, sorted; hosts without one are left out
	zoneGroup   []int32  // the group of this selector plus zone=z, per zone; built on first use
}

// workload is one input workload as the planner sees it.
type workload struct {
	name   string
	tier   v1alpha1.Tier
	vm     bool
	class  int32 // -1 for vm workloads
	sel    map[string]string
	group  int32 // hosts matching sel
	spread v1alpha1.Spread
	reps   []int32
	onHost map[int32]int32  // spread host: replicas per host
	onZone map[string]int32 // spread zone: replicas per zone
	failed string           // why the last replica tried could not be placed
	todo   int32            // replicas the first pass has still to place
	// hostAfter and nodeAfter are where the last replica of a workload spread over hosts
	// went (a host, a slot of its class's node VMs); the next one is looked for after them.
	hostAfter, nodeAfter int32
}

// replica is one replica of a workload. need is what it takes inside its node VM (container,
// sandbox: resources, plus the sandbox overhead) or on its host (vm: resources plus the VM
// overhead).
type replica struct {
	w      int32
	idx    int32
	need   vec
	node   int32
	host   int32
	reason string // why it is unplaced
	static bool   // the reason holds whatever else is placed
}

// node is a node VM.
type node struct {
	class, shape int32
	host         int32
	used         vec
	reps         []int32
	slot         int32 // position in its class's tree
	alive        bool
}

// class is an isolation class with its node VMs.
type class struct {
	name    string
	nodes   []int32 // by slot
	tree    *fitTree
	pref    int32 // the shape it prefers; -1 when no shape holds its replicas
	pending vec   // demand of its replicas not yet placed by the first pass
	slack   vec   // room left in its node VMs
}

func (p *planner) alloc(n *node) vec { return p.shapes[n.shape].alloc }

// log records how to undo a change, while a tentative change is being made.
func (p *planner) log(f func()) {
	if p.logging {
		p.undo = append(p.undo, f)
	}
}

// begin starts a tentative change; rollback undoes it, commit keeps it.
func (p *planner) begin() int {
	p.logging = true
	return len(p.undo)
}

func (p *planner) rollback(mark int) {
	p.logging = false
	for i := len(p.undo) - 1; i >= mark; i-- {
		p.undo[i]()
	}
	p.undo = p.undo[:mark]
}

func (p *planner) commit(mark int) {
	p.logging = false
	p.undo = p.undo[:mark]
}

// refresh puts host h's free capacity into the trees of its groups.
func (p *planner) refresh(h int32) {
	s := &p.hs[h]
	used, empty := vec{none, none}, vec{none, none}
	if !s.closed {
		if s.items > 0 {
			used = s.free
		} else {
			empty = s.free
		}
	}
	for _, m := range s.member {
		g := p.groups[m.g]
		g.used.set(int(m.pos), used)
		g.empty.set(int(m.pos), empty)
	}
}

// take charges amount v and items more items to host h (both may be negative, to give back).
func (p *planner) take(h int32, v vec, items int32) {
	s := &p.hs[h]
	wasUsed := s.items > 0
	if wasUsed && !s.closed {
		p.usedFree = p.usedFree.sub(s.free)
	}
	s.free = s.free.sub(v)
	s.items += items
	isUsed := s.items > 0
	if isUsed && !s.closed {
		p.usedFree = p.usedFree.add(s.free)
	}
	switch {
	case isUsed && !wasUsed:
		p.usedHosts++
	case !isUsed && wasUsed:
		p.usedHosts--
	}
	p.refresh(h)
}

// setClosed takes host h out of every search (while draining it) or puts it back.
func (p *planner) setClosed(h int32, closed bool) {
	s := &p.hs[h]
	if s.closed == closed {
		return
	}
	if s.items > 0 {
		if closed {
			p.usedFree = p.usedFree.sub(s.free)
		} else {
			p.usedFree = p.usedFree.add(s.free)
		}
	}
	s.closed = closed
	p.refresh(h)
}

func (p *planner) spreadAdd(w *workload, h int32, d int32) {
	switch w.spread {
	case v1alpha1.SpreadHost:
		if n := w.onHost[h] + d; n > 0 {
			w.onHost[h] = n
		} else {
			delete(w.onHost, h)
		}
	case v1alpha1.SpreadZone:
		z := p.hosts[h].zone
		if n := w.onZone[z] + d; n > 0 {
			w.onZone[z] = n
		} else {
			delete(w.onZone, z)
		}
	}
}

// conflicts reports whether a replica of w on host h would break w's spread.
func (p *planner) conflicts(w *workload, h int32) bool {
	switch w.spread {
	case v1alpha1.SpreadHost:
		return w.onHost[h] > 0
	case v1alpha1.SpreadZone:
		return !p.hosts[h].zoned || w.onZone[p.hosts[h].zone] > 0
	}
	return false
}

// allows reports whether a replica of w may run on host h: it is a host (a node VM being
// moved has none), open, matches w's selector and keeps w's spread.
func (p *planner) allows(w *workload, h int32) bool {
	return h >= 0 && !p.hs[h].closed && (len(w.sel) == 0 || matches(w.sel, p.hosts[h].labels)) && !p.conflicts(w, h)
}

func remove(list []int32, x int32) []int32 {
	if i := slices.Index(list, x); i >= 0 {
		return slices.Delete(list, i, i+1)
	}
	return list
}

// placeVM runs vm replica r on host h.
func (p *planner) placeVM(r, h int32) {
	rp := &p.reps[r]
	w := &p.wl[rp.w]
	rp.host = h
	p.hs[h].vms = append(p.hs[h].vms, r)
	p.take(h, rp.need, 1)
	p.spreadAdd(w, h, 1)
	p.log(func() { p.unplaceVM(r) })
}

func (p *planner) unplaceVM(r int32) {
	rp := &p.reps[r]
	h := rp.host
	w := &p.wl[rp.w]
	p.spreadAdd(w, h, -1)
	p.hs[h].vms = remove(p.hs[h].vms, r)
	p.take(h, rp.need.scale(-1), -1)
	rp.host = -1
	p.log(func() { p.placeVM(r, h) })
}

// openNode creates a node VM of class c and shape s on host h.
func (p *planner) openNode(c, s, h int32) int32 {
	id := int32(len(p.nodes))
	cl := &p.classes[c]
	p.nodes = append(p.nodes, node{class: c, shape: s, host: h, slot: int32(len(cl.nodes)), alive: true})
	cl.nodes = append(cl.nodes, id)
	cl.tree.grow(len(cl.nodes))
	cl.tree.set(len(cl.nodes)-1, p.shapes[s].alloc)
	p.slack = p.slack.add(p.shapes[s].alloc)
	cl.slack = cl.slack.add(p.shapes[s].alloc)
	p.hs[h].nodes = append(p.hs[h].nodes, id)
	p.take(h, p.shapes[s].cost, 1)
	p.log(func() { p.deleteNode(id) })
	return id
}

// deleteNode removes an empty node VM. Undoing it brings the same node back.
func (p *planner) deleteNode(id int32) {
	n := &p.nodes[id]
	h := n.host
	n.alive = false
	p.classes[n.class].tree.set(int(n.slot), vec{none, none})
	p.slack = p.slack.sub(p.alloc(n).sub(n.used))
	p.classes[n.class].slack = p.classes[n.class].slack.sub(p.alloc(n).sub(n.used))
	if h >= 0 {
		p.hs[h].nodes = remove(p.hs[h].nodes, id)
		p.take(h, p.shapes[n.shape].cost.scale(-1), -1)
	}
	p.log(func() { p.reviveNode(id, h) })
}

func (p *planner) reviveNode(id, h int32) {
	n := &p.nodes[id]
	n.alive, n.host = true, h
	p.classes[n.class].tree.set(int(n.slot), p.alloc(n).sub(n.used))
	p.slack = p.slack.add(p.alloc(n).sub(n.used))
	p.classes[n.class].slack = p.classes[n.class].slack.add(p.alloc(n).sub(n.used))
	if h >= 0 {
		p.hs[h].nodes = append(p.hs[h].nodes, id)
		p.take(h, p.shapes[n.shape].cost, 1)
	}
	p.log(func() { p.deleteNode(id) })
}

// join puts container or sandbox replica r into node VM id.
func (p *planner) join(r, id int32) {
	rp := &p.reps[r]
	n := &p.nodes[id]
	n.used = n.used.add(rp.need)
	n.reps = append(n.reps, r)
	p.slack = p.slack.sub(rp.need)
	p.classes[n.class].slack = p.classes[n.class].slack.sub(rp.need)
	rp.node, rp.host = id, n.host
	p.classes[n.class].tree.set(int(n.slot), p.alloc(n).sub(n.used))
	if n.host >= 0 {
		p.spreadAdd(&p.wl[rp.w], n.host, 1)
	}
	p.log(func() { p.leave(r) })
}

// leave takes replica r out of its node VM.
func (p *planner) leave(r int32) {
	rp := &p.reps[r]
	id := rp.node
	n := &p.nodes[id]
	if n.host >= 0 {
		p.spreadAdd(&p.wl[rp.w], n.host, -1)
	}
	n.used = n.used.sub(rp.need)
	n.reps = remove(n.reps, r)
	p.slack = p.slack.add(rp.need)
	p.classes[n.class].slack = p.classes[n.class].slack.add(rp.need)
	p.classes[n.class].tree.set(int(n.slot), p.alloc(n).sub(n.used))
	rp.node, rp.host = -1, -1
	p.log(func() { p.join(r, id) })
}

// moveNode moves node VM id, with its replicas, to host to.
func (p *planner) moveNode(id, to int32) {
	n := &p.nodes[id]
	from := n.host
	cost := p.shapes[n.shape].cost
	for _, r := range n.reps {
		w := &p.wl[p.reps[r].w]
		p.spreadAdd(w, from, -1)
		p.spreadAdd(w, to, 1)
		p.reps[r].host = to
	}
	p.hs[from].nodes = remove(p.hs[from].nodes, id)
	p.take(from, cost.scale(-1), -1)
	n.host = to
	p.hs[to].nodes = append(p.hs[to].nodes, id)
	p.take(to, cost, 1)
	p.log(func() { p.moveNode(id, from) })
}

// reshape changes node VM id to shape s, which must hold its replicas and fit on its host.
func (p *planner) reshape(id, s int32) {
	n := &p.nodes[id]
	old := n.shape
	p.take(n.host, p.shapes[s].cost.sub(p.shapes[old].cost), 0)
	p.slack = p.slack.add(p.shapes[s].alloc.sub(p.shapes[old].alloc))
	p.classes[n.class].slack = p.classes[n.class].slack.add(p.shapes[s].alloc.sub(p.shapes[old].alloc))
	n.shape = s
	p.classes[n.class].tree.set(int(n.slot), p.alloc(n).sub(n.used))
	p.log(func() { p.reshape(id, old) })
}
