package place_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/place"
)

// basicInstance is the shape of kube-scheduler's SchedulingBasic benchmark at scale: hosts
// identical hosts and replicas container replicas (workloads of ten replicas each) of
// seeded sizes. With classes > 1 the workloads belong to that many tenants, and with spread
// every multi-replica workload is spread over hosts.
func basicInstance(hosts, replicas, classes int, spread bool) place.Input {
	rng := rand.New(rand.NewPCG(42, uint64(classes)))
	f := &v1alpha1.Fleet{Metadata: v1alpha1.ObjectMeta{Name: "bench"}}
	f.Spec.HostPools = []v1alpha1.HostPool{{Prefix: "h", Count: int32(hosts), Capacity: v1alpha1.Capacity{CPU: q("64"), Memory: q("256Gi")}, Labels: map[string]string{"zone": "a"}}}
	f.Spec.NodeShapes = []v1alpha1.NodeShape{{Name: "small", CPU: q("4"), Memory: q("16Gi")}, {Name: "medium", CPU: q("8"), Memory: q("32Gi")}, {Name: "large", CPU: q("16"), Memory: q("64Gi")}}
	f.SetDefaults()
	in := place.Input{Fleet: f}
	const perWorkload = 10
	for i := 0; i < replicas; i += perWorkload {
		n := int32(min(perWorkload, replicas-i))
		w := &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: fmt.Sprintf("app-%d", i/perWorkload),
			Labels: map[string]string{v1alpha1.LabelTenant: fmt.Sprintf("tenant-%d", rng.IntN(classes))}}}
		w.Spec.Replicas = &n
		w.Spec.Resources.CPU = milli(int64(100 * (1 + rng.IntN(20))))
		w.Spec.Resources.Memory = mib(int64(128 * (1 + rng.IntN(32))))
		if spread && n > 1 {
			w.Spec.Placement.Spread = v1alpha1.SpreadHost
		}
		w.SetDefaults()
		in.Workloads = append(in.Workloads, place.Item{Workload: w, Tier: v1alpha1.TierContainer})
	}
	return in
}

func benchPlan(b *testing.B, in place.Input) {
	replicas := 0
	for _, it := range in.Workloads {
		replicas += int(it.Workload.Spec.ReplicaCount())
	}
	b.ReportAllocs()
	b.ResetTimer()
	var res *place.Result
	for b.Loop() {
		res = place.Plan(in, place.Options{})
	}
	b.ReportMetric(float64(replicas)*float64(b.N)/b.Elapsed().Seconds(), "replicas/s")
	b.ReportMetric(float64(res.Plan.Summary.HostsUsed)/float64(max(res.Plan.Summary.LowerBound, 1)), "hosts/bound")
	if res.Plan.Summary.UnplacedCount > 0 {
		b.Fatalf("%d replicas unplaced: %s", res.Plan.Summary.UnplacedCount, res.Plan.Unplaced[0].Reason)
	}
}

// BenchmarkSchedulingBasic: 5,000 hosts, 50,000 container replicas of one isolation class.
func BenchmarkSchedulingBasic(b *testing.B) {
	benchPlan(b, basicInstance(5000, 50000, 1, false))
}

// BenchmarkSchedulingClasses: the same with 50 isolation classes and spread: host on every
// multi-replica workload.
func BenchmarkSchedulingClasses(b *testing.B) {
	benchPlan(b, basicInstance(5000, 50000, 50, true))
}

// BenchmarkPackingQuality plans seeded mixed instances (vm, sandbox and container replicas of
// eight classes on unequal hosts, some spread, some with selectors) and reports the hosts used
// over the lower bound, averaged.
func BenchmarkPackingQuality(b *testing.B) {
	var ins []place.Input
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		ins = append(ins, genInstance(rng, genConfig{hosts: 400, workloads: 300, maxReplicas: 12, classes: 8, vm: 0.25, sandbox: 0.25, spread: 0.2, selector: 0.1}))
	}
	b.ResetTimer()
	var ratio, worst float64
	for b.Loop() {
		ratio, worst = 0, 0
		for _, in := range ins {
			res := place.Plan(in, place.Options{})
			r := float64(res.Plan.Summary.HostsUsed) / float64(max(res.Plan.Summary.LowerBound, 1))
			ratio += r
			worst = max(worst, r)
		}
	}
	b.ReportMetric(ratio/float64(len(ins)), "hosts/bound")
	b.ReportMetric(worst, "worst-hosts/bound")
}
