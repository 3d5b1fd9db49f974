package place

import (
	"math"

	"strata.dev/strata/api/v1alpha1"
)

// The fit rules of node VMs, exported for the daemon's node VM driver, which places
// replicas into the node VMs of one host one at a time with the same rules the planner
// packs a fleet by: what a replica takes of a node VM, what a node VM of a shape holds,
// which open node VM a replica joins, and the shape of a new one.

// Amount is an amount of the two resources placement packs: milli-CPU and bytes of memory.
type Amount struct {
	CPUMilli    int64
	MemoryBytes int64
}

func (a Amount) vec() vec { return vec{a.CPUMilli, a.MemoryBytes} }

func amountOf(v vec) Amount { return Amount{CPUMilli: v.cpu, MemoryBytes: v.mem} }

// Fits reports whether a fits into room, per resource.
func (a Amount) Fits(room Amount) bool { return a.vec().fits(room.vec()) }

// Add is a plus b.
func (a Amount) Add(b Amount) Amount { return amountOf(a.vec().add(b.vec())) }

// String writes a as "1.5 CPU, 512Mi".
func (a Amount) String() string { return fmtVec(a.vec()) }

// Overheads are a fleet's overheads in numbers (v1alpha1.Overheads, defaults for those
// unset): per VM on its host, per sandbox replica in its node VM, and kept back in each node
// VM.
type Overheads struct {
	VM, Sandbox, NodeReserved Amount
}

// FleetOverheads returns f's overheads, the defaults for those it leaves unset (all of them
// for a nil f).
func FleetOverheads(f *v1alpha1.Fleet) Overheads {
	var o v1alpha1.Overheads
	if f != nil {
		o = f.Spec.Overheads
	}
	return Overheads{
		VM:           amountOf(overheadVec(o.VM, v1alpha1.DefaultVMOverhead)),
		Sandbox:      amountOf(overheadVec(o.Sandbox, v1alpha1.DefaultSandboxOverhead)),
		NodeReserved: amountOf(overheadVec(o.NodeReserved, v1alpha1.DefaultNodeReserved)),
	}
}

// NodeShape is a node VM shape with its costs worked out.
type NodeShape struct {
	Name string
	// Size is the VM as declared: what its guest is given.
	Size Amount
	// Alloc is Size less the node's reserve: what replicas may use. Both resources are -1
	// when the reserve leaves nothing of one of them (the shape holds no replica).
	Alloc Amount
	// Cost is Size plus the VM overhead: what the node VM takes of its host.
	Cost Amount
}

// MakeNodeShape works out the shape name of size with o's reserve and VM overhead.
func MakeNodeShape(name string, size Amount, o Overheads) NodeShape {
	s := makeShape(name, size.vec(), o.NodeReserved.vec(), o.VM.vec())
	return NodeShape{Name: s.name, Size: amountOf(s.size), Alloc: amountOf(s.alloc), Cost: amountOf(s.cost)}
}

// FleetNodeShapes works out f's node shapes, in its order, with its overheads.
func FleetNodeShapes(f *v1alpha1.Fleet) []NodeShape {
	o := FleetOverheads(f)
	out := make([]NodeShape, len(f.Spec.NodeShapes))
	for i, s := range fleetShapes(f, o.NodeReserved.vec(), o.VM.vec()) {
		out[i] = NodeShape{Name: s.name, Size: amountOf(s.size), Alloc: amountOf(s.alloc), Cost: amountOf(s.cost)}
	}
	return out
}

// makeShape is shape name of size: what it allocates after reserved, and what it costs
// its host with the VM overhead.
func makeShape(name string, size, reserved, vmOverhead vec) shape {
	alloc := size.sub(reserved)
	if !alloc.positive() {
		alloc = vec{-1, -1}
	}
	return shape{name: name, size: size, alloc: alloc, cost: size.add(vmOverhead)}
}

// ReplicaNeed is what a replica of tier requesting requests takes of its node VM's
// allocatable capacity: its requests, and for a sandbox also the sandbox overhead.
func ReplicaNeed(tier v1alpha1.Tier, requests Amount, o Overheads) Amount {
	return amountOf(replicaNeed(tier, requests.vec(), o.VM.vec(), o.Sandbox.vec()))
}

// replicaNeed is what a replica of tier requesting res takes: of its host for the vm tier
// (res and the VM overhead), of its node VM otherwise (res, and the sandbox overhead for a
// sandbox).
func replicaNeed(tier v1alpha1.Tier, res, vmOverhead, sbOverhead vec) vec {
	switch tier {
	case v1alpha1.TierVM:
		return res.add(vmOverhead)
	case v1alpha1.TierSandbox:
		return res.add(sbOverhead)
	}
	return res
}

// NodeRoom is an open node VM as placement sees it: what it allocates to replicas and what
// those it holds take of it.
type NodeRoom struct {
	Alloc, Used Amount
}

// BestNode returns the index of the node VM of nodes that a replica needing need fits best:
// of those with room for it, the one that keeps the least room after taking it (the
// planner's best fit), the first of equals; -1 when it fits none.
func BestNode(nodes []NodeRoom, need Amount) int {
	best, bestScore := -1, 0.0
	for i, n := range nodes {
		alloc, used := n.Alloc.vec(), n.Used.vec()
		if !need.vec().fits(alloc.sub(used)) {
			continue
		}
		if s := fitScore(alloc, used, need.vec()); best < 0 || s < bestScore {
			best, bestScore = i, s
		}
	}
	return best
}

// fitScore is how much room a node VM allocating alloc, of which used is taken, keeps after
// taking need: squared and normalized by alloc, per resource, summed.
func fitScore(alloc, used, need vec) float64 {
	c, m := alloc.sub(used).sub(need).frac(alloc)
	return c*c + m*m
}

// CheapestShape returns the index of the shape of shapes for a new node VM for a replica
// needing need on a host of capacity host: of the shapes that hold the replica and fit on
// the host, the one that takes the least of the host (the planner's ranking: the larger of
// its shares of CPU and memory first, the other share after); -1 when none does.
func CheapestShape(shapes []NodeShape, host, need Amount) int {
	return cheapest(len(shapes), func(i int) (alloc, cost vec) { return shapes[i].Alloc.vec(), shapes[i].Cost.vec() }, host.vec(), need.vec())
}

// cheapest is the index of the shape, of n shapes with the allocatable and cost capacity
// shape gives, that allocates at least need, fits on a host of capacity host and takes the
// least of it; -1 when none does.
func cheapest(n int, shape func(i int) (alloc, cost vec), host, need vec) int {
	best, bestCost := -1, math.Inf(1)
	for i := range n {
		alloc, cost := shape(i)
		if !need.fits(alloc) || !cost.fits(host) {
			continue
		}
		if c := costShare(cost, host); c < bestCost {
			best, bestCost = i, c
		}
	}
	return best
}

// costShare ranks a node VM costing cost by what it takes of a host of capacity host: the
// dominant share, with the other share as a small tie-breaker.
func costShare(cost, host vec) float64 {
	c, m := cost.frac(host)
	return math.Max(c, m) + 1e-6*math.Min(c, m)
}

// FleetHost returns the capacity of the host of f named name, one of spec.hosts or a
// member of a pool (<prefix>1 to <prefix><count>); ok is false when f has none of that
// name.
func FleetHost(f *v1alpha1.Fleet, name string) (capacity Amount, ok bool) {
	for _, h := range expandHosts(f) {
		if h.name == name {
			return amountOf(h.cap), true
		}
	}
	return Amount{}, false
}
