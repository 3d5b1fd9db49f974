package place_test

import (
	"fmt"
	"math/rand/v2"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/place"
)

// genConfig shapes a random instance.
type genConfig struct {
	hosts, workloads, maxReplicas int
	classes                       int     // distinct isolation classes (tenants)
	vm, sandbox                   float64 // shares of vm and sandbox workloads
	spread, selector              float64 // shares of workloads with a spread, a hostSelector
}

func q(s string) resource.Quantity { return resource.MustParse(s) }

func milli(m int64) resource.Quantity { return *resource.NewMilliQuantity(m, resource.DecimalSI) }

func mib(n int64) resource.Quantity { return *resource.NewQuantity(n<<20, resource.BinarySI) }

// genInstance makes a random, valid, defaulted instance from rng.
func genInstance(rng *rand.Rand, c genConfig) place.Input {
	f := &v1alpha1.Fleet{Metadata: v1alpha1.ObjectMeta{Name: "random"}}
	caps := []v1alpha1.Capacity{{CPU: q("16"), Memory: q("64Gi")}, {CPU: q("32"), Memory: q("128Gi")}, {CPU: q("64"), Memory: q("256Gi")}, {CPU: q("48"), Memory: q("384Gi")}}
	zones := []string{"a", "b", "c"}
	labels := func() map[string]string {
		l := map[string]string{"rack": fmt.Sprintf("r%d", rng.IntN(3))}
		if rng.IntN(8) > 0 {
			l["zone"] = zones[rng.IntN(len(zones))]
		}
		return l
	}
	n := 0
	for n < c.hosts {
		if rng.IntN(3) == 0 && c.hosts-n > 2 {
			count := 1 + rng.IntN(min(c.hosts-n, 40))
			f.Spec.HostPools = append(f.Spec.HostPools, v1alpha1.HostPool{Prefix: fmt.Sprintf("p%dx", len(f.Spec.HostPools)),
				Count: int32(count), Capacity: caps[rng.IntN(len(caps))], Labels: labels()})
			n += count
			continue
		}
		f.Spec.Hosts = append(f.Spec.Hosts, v1alpha1.Host{Name: fmt.Sprintf("h%d", len(f.Spec.Hosts)+1), Capacity: caps[rng.IntN(len(caps))], Labels: labels()})
		n++
	}
	allShapes := []v1alpha1.NodeShape{{Name: "small", CPU: q("4"), Memory: q("16Gi")}, {Name: "medium", CPU: q("8"), Memory: q("32Gi")},
		{Name: "large", CPU: q("16"), Memory: q("64Gi")}, {Name: "highmem", CPU: q("4"), Memory: q("32Gi")}, {Name: "xl", CPU: q("30"), Memory: q("120Gi")}}
	for _, s := range allShapes {
		if rng.IntN(2) == 0 {
			f.Spec.NodeShapes = append(f.Spec.NodeShapes, s)
		}
	}
	if len(f.Spec.NodeShapes) == 0 && rng.IntN(10) > 0 {
		f.Spec.NodeShapes = allShapes[:1]
	}
	if rng.IntN(3) == 0 {
		f.Spec.Overheads.VM = &v1alpha1.Capacity{CPU: milli(int64(rng.IntN(300))), Memory: mib(int64(rng.IntN(512)))}
		f.Spec.Overheads.NodeReserved = &v1alpha1.Capacity{CPU: milli(int64(rng.IntN(1000))), Memory: mib(int64(rng.IntN(2048)))}
	}
	f.SetDefaults()
	in := place.Input{Fleet: f}
	tiers := func() v1alpha1.Tier {
		x := rng.Float64()
		switch {
		case x < c.vm:
			return v1alpha1.TierVM
		case x < c.vm+c.sandbox:
			return v1alpha1.TierSandbox
		}
		return v1alpha1.TierContainer
	}
	for i := range c.workloads {
		tier := tiers()
		w := &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: fmt.Sprintf("w%d", i),
			Labels: map[string]string{v1alpha1.LabelTenant: fmt.Sprintf("t%d", rng.IntN(max(c.classes, 1)))}}}
		reps := int32(rng.IntN(c.maxReplicas + 1))
		w.Spec.Replicas = &reps
		w.Spec.Isolation = v1alpha1.Isolation(tier)
		cpu := int64(100 * (1 + rng.IntN(40)))
		mem := int64(128 * (1 + rng.IntN(64)))
		if tier == v1alpha1.TierVM && rng.IntN(3) == 0 {
			cpu, mem = cpu*4, mem*4
		}
		w.Spec.Resources.CPU, w.Spec.Resources.Memory = milli(cpu), mib(mem)
		if rng.Float64() < c.spread {
			w.Spec.Placement.Spread = []v1alpha1.Spread{v1alpha1.SpreadHost, v1alpha1.SpreadZone}[rng.IntN(2)]
		}
		if rng.Float64() < c.selector {
			w.Spec.Placement.HostSelector = []map[string]string{{"zone": "a"}, {"zone": "b"}, {"rack": "r1"}, {"zone": "d"}, {"zone": "c", "rack": "r2"}}[rng.IntN(5)]
		}
		if rng.IntN(10) == 0 {
			w.Spec.Placement.IsolationClass = "shared"
		}
		w.SetDefaults()
		in.Workloads = append(in.Workloads, place.Item{Workload: w, Tier: tier})
	}
	return in
}
