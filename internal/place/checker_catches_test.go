package place_test

import (
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/place"
)

// TestCheckerCatchesBrokenPlans breaks a valid plan in each way the checker looks for, so the
// property tests cannot pass by checking nothing.
func TestCheckerCatchesBrokenPlans(t *testing.T) {
	fleet := &v1alpha1.Fleet{Metadata: v1alpha1.ObjectMeta{Name: "dc"}}
	fleet.Spec.Hosts = []v1alpha1.Host{
		{Name: "a1", Capacity: v1alpha1.Capacity{CPU: q("16"), Memory: q("64Gi")}, Labels: map[string]string{"zone": "a"}},
		{Name: "b1", Capacity: v1alpha1.Capacity{CPU: q("16"), Memory: q("64Gi")}, Labels: map[string]string{"zone": "b"}},
		{Name: "b2", Capacity: v1alpha1.Capacity{CPU: q("16"), Memory: q("64Gi")}, Labels: map[string]string{"zone": "b"}},
	}
	fleet.Spec.NodeShapes = []v1alpha1.NodeShape{{Name: "small", CPU: q("4"), Memory: q("16Gi")}}
	fleet.SetDefaults()
	workload := func(name, tenant string, tier v1alpha1.Tier, replicas int32, cpu string, pl v1alpha1.Placement) place.Item {
		w := &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelTenant: tenant}}}
		w.Spec.Replicas = &replicas
		w.Spec.Isolation = v1alpha1.Isolation(tier)
		w.Spec.Resources.CPU, w.Spec.Resources.Memory = q(cpu), q("1Gi")
		w.Spec.Placement = pl
		w.SetDefaults()
		return place.Item{Workload: w, Tier: tier}
	}
	in := place.Input{Fleet: fleet, Workloads: []place.Item{
		workload("web", "shop", v1alpha1.TierContainer, 2, "1", v1alpha1.Placement{Spread: v1alpha1.SpreadHost}),
		workload("blog", "blog", v1alpha1.TierContainer, 1, "1", v1alpha1.Placement{}),
		workload("db", "shop", v1alpha1.TierVM, 1, "10", v1alpha1.Placement{HostSelector: map[string]string{"zone": "b"}}),
		workload("big", "shop", v1alpha1.TierVM, 1, "10", v1alpha1.Placement{}),
	}}
	base := place.Plan(in, place.Options{}).Plan
	if errs := check(in, &base); len(errs) > 0 {
		t.Fatalf("the plan to break is not valid: %v", errs)
	}
	find := func(p *v1alpha1.PlacementPlan, w string, r int32) *v1alpha1.ReplicaPlacement {
		for i := range p.Placements {
			if p.Placements[i].Workload == w && p.Placements[i].Replica == r {
				return &p.Placements[i]
			}
		}
		t.Fatalf("%s/%d is not placed in %+v", w, r, p.Placements)
		return nil
	}
	nodeOf := func(p *v1alpha1.PlacementPlan, name string) *v1alpha1.PlannedNode {
		for i := range p.Nodes {
			if p.Nodes[i].Name == name {
				return &p.Nodes[i]
			}
		}
		t.Fatalf("no node %s", name)
		return nil
	}
	tests := []struct {
		name   string
		mutate func(p *v1alpha1.PlacementPlan)
		want   string
	}{
		{"placed twice", func(p *v1alpha1.PlacementPlan) { p.Placements = append(p.Placements, p.Placements[0]) }, "placed again"},
		{"neither placed nor explained", func(p *v1alpha1.PlacementPlan) { p.Placements = p.Placements[1:] }, "neither placed nor explained"},
		{"unplaced without reason", func(p *v1alpha1.PlacementPlan) {
			pl := p.Placements[0]
			p.Placements = p.Placements[1:]
			p.Unplaced = append(p.Unplaced, v1alpha1.UnplacedReplica{Workload: pl.Workload, Replica: pl.Replica})
		}, "without a reason"},
		{"two classes in a node", func(p *v1alpha1.PlacementPlan) {
			b, w := find(p, "blog", 0), find(p, "web", 0)
			b.Node, b.Host = w.Node, w.Host
		}, "of class blog/internal/internal is in node"},
		{"host over capacity", func(p *v1alpha1.PlacementPlan) { find(p, "big", 0).Host = find(p, "db", 0).Host }, "more than its capacity"},
		{"spread broken", func(p *v1alpha1.PlacementPlan) {
			a, b := find(p, "web", 0), find(p, "web", 1)
			b.Node, b.Host = a.Node, a.Host
		}, "despite spread host"},
		{"selector broken", func(p *v1alpha1.PlacementPlan) { find(p, "db", 0).Host = "a1" }, "breaks hostSelector zone=b"},
		{"node over capacity", func(p *v1alpha1.PlacementPlan) {
			in.Workloads[1].Workload.Spec.Resources.CPU = q("4")
			nodeOf(p, find(p, "blog", 0).Node).Shape = "small"
		}, "allocatable"},
		{"vm in a node", func(p *v1alpha1.PlacementPlan) { find(p, "big", 0).Node = p.Nodes[0].Name }, "is in node"},
		{"host of node and replica differ", func(p *v1alpha1.PlacementPlan) {
			w := find(p, "web", 0)
			w.Host = map[string]string{"a1": "b1", "b1": "a1", "b2": "a1"}[w.Host]
		}, "its node"},
		{"wrong tier", func(p *v1alpha1.PlacementPlan) { find(p, "blog", 0).Tier = v1alpha1.TierSandbox }, "its tier is container"},
		{"summary off", func(p *v1alpha1.PlacementPlan) { p.Summary.HostsUsed++ }, "hosts used"},
		{"bound above the plan", func(p *v1alpha1.PlacementPlan) { p.Summary.LowerBound = p.Summary.HostsUsed + 1 }, "lower bound"},
		{"empty node", func(p *v1alpha1.PlacementPlan) {
			p.Nodes = append(p.Nodes, v1alpha1.PlannedNode{Name: "node-99", Shape: "small", Host: "a1", Class: "x"})
			p.Summary.Nodes++
		}, "holds nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken := place.Plan(in, place.Options{}).Plan
			cpu := in.Workloads[1].Workload.Spec.Resources.CPU
			defer func() { in.Workloads[1].Workload.Spec.Resources.CPU = cpu }()
			tt.mutate(&broken)
			errs := check(in, &broken)
			if !strings.Contains(strings.Join(errs, "\n"), tt.want) {
				t.Errorf("the checker did not catch it: want an error containing %q, got %q", tt.want, errs)
			}
		})
	}
}
