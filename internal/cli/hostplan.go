package cli

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/api/wire"
	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/place"
)

// nodeVMDriver is the driver name the daemon gives instances that run inside node VMs
// (status.instances[].driver).
const nodeVMDriver = "nodevm"

// readHostPlacement asks the daemon for what strata plan --host prints: its node VMs, its
// workloads and its Host. A daemon from before node VMs (no nodes path) has none.
func readHostPlacement(c *cobra.Command) (*place.Result, error) {
	cl, err := newClient(c)
	if err != nil {
		return nil, err
	}
	var nodes struct {
		Items []v1alpha1.NodeVM `json:"items"`
	}
	if err := cl.List(c.Context(), wire.NodesPath, &nodes); err != nil && !isNotFound(err) {
		return nil, apiFailure(err)
	}
	var wls struct {
		Items []v1alpha1.Workload `json:"items"`
	}
	if err := cl.List(c.Context(), "workloads", &wls); err != nil {
		return nil, apiFailure(err)
	}
	var hosts struct {
		Items []v1alpha1.HostObject `json:"items"`
	}
	if err := cl.List(c.Context(), "hosts", &hosts); err != nil && !isNotFound(err) {
		return nil, apiFailure(err)
	}
	return hostPlacement(daemonHost(hosts.Items), nodes.Items, wls.Items), nil
}

func isNotFound(err error) bool { return client.Reason(err) == wire.ReasonNotFound }

// daemonHost is the Host the daemon reports: the one it heartbeats, or of several (hosts
// that shared the store before) the one with the latest heartbeat; nil when there is none.
func daemonHost(hosts []v1alpha1.HostObject) *v1alpha1.HostObject {
	var out *v1alpha1.HostObject
	for i := range hosts {
		h := &hosts[i]
		if h.Status == nil {
			continue
		}
		if out == nil || h.Status.LastHeartbeatTime.After(out.Status.LastHeartbeatTime) {
			out = h
		}
	}
	return out
}

// hostPlacement is the daemon's current placement as a plan of one host: each node VM a
// PlannedNode (its shape written as "CPU CPU, MEMORY", its utilization what its replicas
// request of it) with the replicas it carries, every other instance placed on the host
// without a node (the vm tier's VMs, and the containers and sandboxes on the host's
// kernel), and the replicas the workloads want that run nowhere unplaced, with why. host
// is the daemon's Host (nil: named "this host", no load known).
func hostPlacement(host *v1alpha1.HostObject, nodes []v1alpha1.NodeVM, wls []v1alpha1.Workload) *place.Result {
	name := "this host"
	if host != nil {
		name = host.Metadata.Name
	}
	slices.SortFunc(nodes, func(a, b v1alpha1.NodeVM) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(wls, func(a, b v1alpha1.Workload) int { return cmp.Compare(a.Metadata.Name, b.Metadata.Name) })
	byName := map[string]*v1alpha1.Workload{}
	for i := range wls {
		byName[wls[i].Metadata.Name] = &wls[i]
	}
	plan := v1alpha1.PlacementPlan{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindPlacementPlan},
		Nodes:    []v1alpha1.PlannedNode{}, Placements: []v1alpha1.ReplicaPlacement{}, Unplaced: []v1alpha1.UnplacedReplica{},
	}
	var stats place.Stats
	placed := map[string]bool{} // instance IDs
	for _, n := range nodes {
		shape := shapeName(n.ShapeName, n.Shape)
		use := v1alpha1.Utilization{CPU: share(n.Usage.CPU, n.Shape.CPU), Memory: share(n.Usage.Memory, n.Shape.Memory)}
		plan.Nodes = append(plan.Nodes, v1alpha1.PlannedNode{Name: n.Name, Shape: shape, Host: name, Class: n.Class, Utilization: &use})
		stats.Shapes = append(stats.Shapes, place.ShapeUse{Shape: shape, Class: n.Class, Nodes: 1, Utilization: use})
		for _, r := range n.Replicas {
			tier := v1alpha1.TierContainer
			if w := byName[r.Workload]; w != nil && w.Status != nil && w.Status.Tier != "" {
				tier = w.Status.Tier
			}
			plan.Placements = append(plan.Placements, v1alpha1.ReplicaPlacement{Workload: r.Workload, Replica: replicaOf(r.ID, r.Workload),
				Tier: tier, Node: n.Name, Host: name})
			placed[r.ID] = true
		}
	}
	for _, w := range wls {
		if w.Status == nil {
			continue
		}
		for _, in := range w.Status.Instances {
			if placed[in.ID] || in.Driver == nodeVMDriver { // one in no node VM yet is being placed
				continue
			}
			tier := cmp.Or(in.Tier, w.Status.Tier)
			plan.Placements = append(plan.Placements, v1alpha1.ReplicaPlacement{Workload: w.Metadata.Name, Replica: replicaOf(in.ID, w.Metadata.Name),
				Tier: tier, Host: name})
			placed[in.ID] = true
		}
	}
	slices.SortStableFunc(plan.Placements, func(a, b v1alpha1.ReplicaPlacement) int {
		return cmp.Or(cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.Replica, b.Replica))
	})
	for i := range wls {
		w := &wls[i]
		for r := range w.DesiredReplicas() {
			id := w.Metadata.Name + "-" + strconv.Itoa(int(r))
			if !placed[id] {
				plan.Unplaced = append(plan.Unplaced, v1alpha1.UnplacedReplica{Workload: w.Metadata.Name, Replica: r, Reason: notRunning(w, id)})
			}
		}
	}

	s := &plan.Summary
	s.HostsAvailable = 1
	s.Nodes = len(plan.Nodes)
	s.Placed = len(plan.Placements)
	s.UnplacedCount = len(plan.Unplaced)
	s.Replicas = s.Placed + s.UnplacedCount
	if s.Placed > 0 || s.Nodes > 0 {
		s.HostsUsed, s.LowerBound = 1, 1 // one host: no placement does with fewer
		hu := v1alpha1.HostUsage{Name: name, Nodes: s.Nodes}
		if host != nil && host.Status != nil {
			hu.CPU = share(host.Status.Allocated.CPU, host.Status.Capacity.CPU)
			hu.Memory = share(host.Status.Allocated.Memory, host.Status.Capacity.Memory)
		}
		for _, p := range plan.Placements {
			if p.Node == "" && p.Tier == v1alpha1.TierVM {
				hu.VMs++
			}
		}
		s.Utilization = v1alpha1.Utilization{CPU: hu.CPU, Memory: hu.Memory}
		plan.Hosts = []v1alpha1.HostUsage{hu}
	}
	return &place.Result{Plan: plan, Stats: stats}
}

// shapeName writes a node VM's shape as its name and size, "small (1 CPU, 512Mi)", or its
// size alone when it has no name.
func shapeName(name string, c v1alpha1.Capacity) string {
	size := c.CPU.String() + " CPU, " + c.Memory.String()
	if name == "" {
		return size
	}
	return name + " (" + size + ")"
}

// share is used over total, 0 when total is.
func share(used, total resource.Quantity) float64 {
	if total.IsZero() {
		return 0
	}
	return used.AsApproximateFloat64() / total.AsApproximateFloat64()
}

// replicaOf is the replica number of instance id of workload: "web-2" of web is 2; -1 when
// the ID does not end in one.
func replicaOf(id, workload string) int32 {
	n, err := strconv.ParseInt(strings.TrimPrefix(id, workload+"-"), 10, 32)
	if err != nil || !strings.HasPrefix(id, workload+"-") {
		return -1
	}
	return int32(n)
}

// notRunning says why replica id of w runs nowhere: its instance's message or state (one
// the nodevm driver starts that no node VM lists yet), else the workload's Ready condition
// when it is not true, else that it has not started yet.
func notRunning(w *v1alpha1.Workload, id string) string {
	if w.Status == nil {
		return "not assessed yet"
	}
	for _, in := range w.Status.Instances {
		switch {
		case in.ID != id:
		case in.Message != "":
			return in.Message
		case in.Driver == nodeVMDriver && w.Status.NodeVM != nil:
			return fmt.Sprintf("%s in a node VM of class %s: no node VM carries it yet", in.State, w.Status.NodeVM.Class)
		case in.State != "":
			return in.State + " on " + cmp.Or(in.Driver, "the host")
		}
	}
	for _, c := range w.Status.Conditions {
		if c.Type == "Ready" && c.Status != v1alpha1.ConditionTrue && c.Message != "" {
			return fmt.Sprintf("%s: %s", c.Reason, c.Message)
		}
	}
	return "not started yet"
}
