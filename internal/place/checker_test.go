package place_test

import (
	"fmt"
	"sort"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/place"
)

// The checker below recomputes every hard constraint of DESIGN.md section 3 from the input and
// the plan alone, sharing no code with the planner: quantities, pools, costs and spreads are
// worked out again here.

type amount struct{ cpu, mem int64 }

func amountOf(cpu, mem resource.Quantity) amount { return amount{cpu.MilliValue(), mem.Value()} }

func (a amount) plus(b amount) amount  { return amount{a.cpu + b.cpu, a.mem + b.mem} }
func (a amount) minus(b amount) amount { return amount{a.cpu - b.cpu, a.mem - b.mem} }
func (a amount) within(b amount) bool  { return a.cpu <= b.cpu && a.mem <= b.mem }

func overhead(c *v1alpha1.Capacity, def v1alpha1.Capacity) amount {
	if c == nil {
		c = &def
	}
	return amountOf(c.CPU, c.Memory)
}

type checkHost struct {
	cap    amount
	labels map[string]string
}

// check returns every way plan breaks a constraint or misreports itself.
func check(in place.Input, plan *v1alpha1.PlacementPlan) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	f := in.Fleet
	if plan.APIVersion != v1alpha1.GroupVersion || plan.Kind != "PlacementPlan" {
		fail("apiVersion/kind is %s/%s", plan.APIVersion, plan.Kind)
	}
	hosts := map[string]checkHost{}
	for _, h := range f.Spec.Hosts {
		hosts[h.Name] = checkHost{amountOf(h.Capacity.CPU, h.Capacity.Memory), h.Labels}
	}
	for _, pool := range f.Spec.HostPools {
		for i := 1; i <= int(pool.Count); i++ {
			hosts[pool.Prefix+strconv.Itoa(i)] = checkHost{amountOf(pool.Capacity.CPU, pool.Capacity.Memory), pool.Labels}
		}
	}
	shapes := map[string]amount{}
	for _, s := range f.Spec.NodeShapes {
		shapes[s.Name] = amountOf(s.CPU, s.Memory)
	}
	vmOH := overhead(f.Spec.Overheads.VM, v1alpha1.DefaultVMOverhead)
	sbOH := overhead(f.Spec.Overheads.Sandbox, v1alpha1.DefaultSandboxOverhead)
	reserved := overhead(f.Spec.Overheads.NodeReserved, v1alpha1.DefaultNodeReserved)

	type wl struct {
		w    *v1alpha1.Workload
		tier v1alpha1.Tier
	}
	wls := map[string]wl{}
	for _, it := range in.Workloads {
		wls[it.Workload.Metadata.Name] = wl{it.Workload, it.Tier}
	}

	type nodeInfo struct {
		shape, host, class string
		used               amount
		replicas           int
	}
	nodes := map[string]*nodeInfo{}
	hostUse := map[string]amount{}
	for _, n := range plan.Nodes {
		if _, dup := nodes[n.Name]; dup {
			fail("node %s listed twice", n.Name)
			continue
		}
		size, ok := shapes[n.Shape]
		if !ok {
			fail("node %s has unknown shape %q", n.Name, n.Shape)
		}
		if _, ok := hosts[n.Host]; !ok {
			fail("node %s is on unknown host %q", n.Name, n.Host)
		}
		nodes[n.Name] = &nodeInfo{shape: n.Shape, host: n.Host, class: n.Class}
		hostUse[n.Host] = hostUse[n.Host].plus(size).plus(vmOH)
	}

	type key struct {
		w string
		r int32
	}
	seen := map[key]string{}
	spreadHosts := map[string]map[string]int32{} // workload -> host or zone -> replica
	for _, pl := range plan.Placements {
		k := key{pl.Workload, pl.Replica}
		if seen[k] != "" {
			fail("%s/%d is %s and placed again", pl.Workload, pl.Replica, seen[k])
			continue
		}
		seen[k] = "placed"
		w, ok := wls[pl.Workload]
		if !ok {
			fail("placement of unknown workload %q", pl.Workload)
			continue
		}
		if pl.Replica < 0 || pl.Replica >= w.w.Spec.ReplicaCount() {
			fail("%s has no replica %d", pl.Workload, pl.Replica)
		}
		if pl.Tier != w.tier {
			fail("%s/%d placed as %s, its tier is %s", pl.Workload, pl.Replica, pl.Tier, w.tier)
		}
		h, ok := hosts[pl.Host]
		if !ok {
			fail("%s/%d on unknown host %q", pl.Workload, pl.Replica, pl.Host)
			continue
		}
		res := amountOf(w.w.Spec.Resources.CPU, w.w.Spec.Resources.Memory)
		if w.tier == v1alpha1.TierVM {
			if pl.Node != "" {
				fail("vm replica %s/%d is in node %s", pl.Workload, pl.Replica, pl.Node)
			}
			hostUse[pl.Host] = hostUse[pl.Host].plus(res).plus(vmOH)
		} else {
			n, ok := nodes[pl.Node]
			switch {
			case !ok:
				fail("%s/%d is in unknown node %q", pl.Workload, pl.Replica, pl.Node)
			case n.host != pl.Host:
				fail("%s/%d says host %s, its node %s is on %s", pl.Workload, pl.Replica, pl.Host, pl.Node, n.host)
			case n.class != w.w.IsolationClass():
				fail("%s/%d of class %s is in node %s of class %s", pl.Workload, pl.Replica, w.w.IsolationClass(), pl.Node, n.class)
			}
			if ok {
				need := res
				if w.tier == v1alpha1.TierSandbox {
					need = need.plus(sbOH)
				}
				n.used = n.used.plus(need)
				n.replicas++
			}
		}
		for k, v := range w.w.Spec.Placement.HostSelector {
			if h.labels[k] != v {
				fail("%s/%d on %s breaks hostSelector %s=%s", pl.Workload, pl.Replica, pl.Host, k, v)
			}
		}
		if sp := w.w.Spec.Placement.Spread; sp != "" {
			where := pl.Host
			if sp == v1alpha1.SpreadZone {
				z, ok := h.labels["zone"]
				if !ok {
					fail("%s/%d spread over zones is on %s, which has no zone", pl.Workload, pl.Replica, pl.Host)
				}
				where = "zone " + z
			}
			if spreadHosts[pl.Workload] == nil {
				spreadHosts[pl.Workload] = map[string]int32{}
			}
			if other, dup := spreadHosts[pl.Workload][where]; dup {
				fail("%s/%d and /%d share %s despite spread %s", pl.Workload, pl.Replica, other, where, sp)
			}
			spreadHosts[pl.Workload][where] = pl.Replica
		}
	}
	for _, u := range plan.Unplaced {
		k := key{u.Workload, u.Replica}
		if seen[k] != "" {
			fail("%s/%d is %s and unplaced too", u.Workload, u.Replica, seen[k])
			continue
		}
		seen[k] = "unplaced"
		if u.Reason == "" {
			fail("%s/%d is unplaced without a reason", u.Workload, u.Replica)
		}
	}
	total := 0
	for name, w := range wls {
		for i := range w.w.Spec.ReplicaCount() {
			total++
			if seen[key{name, i}] == "" {
				fail("%s/%d is neither placed nor explained", name, i)
			}
		}
	}
	names := make([]string, 0, len(nodes))
	for name := range nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n := nodes[name]
		if n.replicas == 0 {
			fail("node %s holds nothing", name)
		}
		if alloc := shapes[n.shape].minus(reserved); !n.used.within(alloc) {
			fail("node %s holds %v, more than its %v allocatable", name, n.used, alloc)
		}
	}
	for name, use := range hostUse {
		if h, ok := hosts[name]; ok && !use.within(h.cap) {
			fail("host %s carries %v, more than its capacity %v", name, use, h.cap)
		}
	}
	s := plan.Summary
	if s.HostsUsed != len(hostUse) {
		fail("summary says %d hosts used, the plan uses %d", s.HostsUsed, len(hostUse))
	}
	if s.Nodes != len(plan.Nodes) {
		fail("summary says %d nodes, the plan has %d", s.Nodes, len(plan.Nodes))
	}
	if s.LowerBound > s.HostsUsed {
		fail("lower bound %d is above the %d hosts used", s.LowerBound, s.HostsUsed)
	}
	if s.Replicas != total || s.Placed != len(plan.Placements) || s.UnplacedCount != len(plan.Unplaced) {
		fail("summary counts %d replicas, %d placed, %d unplaced; the plan has %d, %d, %d",
			s.Replicas, s.Placed, s.UnplacedCount, total, len(plan.Placements), len(plan.Unplaced))
	}
	return errs
}
