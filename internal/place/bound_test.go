package place_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/place"
)

// TestLowerBoundIsValid plans tiny random VM instances, finds the true fewest hosts for the
// replicas the plan placed by trying every assignment, and checks that the lower bound never
// passes it. It also counts how often the plan is optimal.
func TestLowerBoundIsValid(t *testing.T) {
	optimal, total := 0, 0
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 99))
		f := &v1alpha1.Fleet{Metadata: v1alpha1.ObjectMeta{Name: "tiny"}}
		for i := range 2 + rng.IntN(3) {
			zone := []string{"a", "b"}[rng.IntN(2)]
			f.Spec.Hosts = append(f.Spec.Hosts, v1alpha1.Host{Name: fmt.Sprintf("h%d", i),
				Capacity: v1alpha1.Capacity{CPU: milli(int64(4000 + 2000*rng.IntN(4))), Memory: mib(int64(4096 * (1 + rng.IntN(4))))},
				Labels:   map[string]string{"zone": zone}})
		}
		f.SetDefaults()
		in := place.Input{Fleet: f}
		for i := range 1 + rng.IntN(4) {
			w := &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: fmt.Sprintf("w%d", i)}}
			n := int32(1 + rng.IntN(3))
			w.Spec.Replicas = &n
			w.Spec.Resources.CPU, w.Spec.Resources.Memory = milli(int64(500*(1+rng.IntN(8)))), mib(int64(512*(1+rng.IntN(12))))
			switch rng.IntN(4) {
			case 0:
				w.Spec.Placement.Spread = v1alpha1.SpreadHost
			case 1:
				w.Spec.Placement.HostSelector = map[string]string{"zone": "a"}
			}
			w.SetDefaults()
			in.Workloads = append(in.Workloads, place.Item{Workload: w, Tier: v1alpha1.TierVM})
		}
		plan := place.Plan(in, place.Options{}).Plan
		if errs := check(in, &plan); len(errs) > 0 {
			t.Fatalf("seed %d: %v", seed, errs)
		}
		opt := fewestHosts(in, &plan)
		if plan.Summary.LowerBound > opt {
			t.Errorf("seed %d: lower bound %d, but %d hosts can hold what the plan placed", seed, plan.Summary.LowerBound, opt)
		}
		total++
		if plan.Summary.HostsUsed == opt {
			optimal++
		}
	}
	t.Logf("the plan used the fewest hosts possible in %d of %d instances", optimal, total)
}

// fewestHosts finds by exhaustive search the fewest hosts that hold the vm replicas a plan
// placed, with their overhead, selectors and spreads.
func fewestHosts(in place.Input, plan *v1alpha1.PlacementPlan) int {
	type vm struct {
		need   amount
		sel    map[string]string
		w      string
		spread bool
	}
	byName := map[string]*v1alpha1.Workload{}
	for _, it := range in.Workloads {
		byName[it.Workload.Metadata.Name] = it.Workload
	}
	oh := overhead(in.Fleet.Spec.Overheads.VM, v1alpha1.DefaultVMOverhead)
	var vms []vm
	for _, pl := range plan.Placements {
		w := byName[pl.Workload]
		vms = append(vms, vm{amountOf(w.Spec.Resources.CPU, w.Spec.Resources.Memory).plus(oh), w.Spec.Placement.HostSelector, pl.Workload, w.Spec.Placement.Spread == v1alpha1.SpreadHost})
	}
	hosts := in.Fleet.Spec.Hosts
	free := make([]amount, len(hosts))
	count := make([]int, len(hosts))
	for i, h := range hosts {
		free[i] = amountOf(h.Capacity.CPU, h.Capacity.Memory)
	}
	where := make([]int, len(vms))
	best := len(hosts) + 1
	var try func(i, used int)
	try = func(i, used int) {
		if used >= best {
			return
		}
		if i == len(vms) {
			best = used
			return
		}
	next:
		for h := range hosts {
			if !vms[i].need.within(free[h]) {
				continue
			}
			for k, v := range vms[i].sel {
				if hosts[h].Labels[k] != v {
					continue next
				}
			}
			if vms[i].spread {
				for j := range i {
					if vms[j].w == vms[i].w && where[j] == h {
						continue next
					}
				}
			}
			where[i] = h
			free[h] = free[h].minus(vms[i].need)
			count[h]++
			add := 0
			if count[h] == 1 {
				add = 1
			}
			try(i+1, used+add)
			count[h]--
			free[h] = free[h].plus(vms[i].need)
		}
	}
	try(0, 0)
	return best
}
