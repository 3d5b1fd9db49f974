package place_test

import (
	"fmt"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/place"
)

// bytesource reads an instance's numbers from fuzzer input; past its end it reads zeros.
type bytesource struct{ b []byte }

func (s *bytesource) next() int {
	if len(s.b) == 0 {
		return 0
	}
	v := int(s.b[0])
	s.b = s.b[1:]
	return v
}

func (s *bytesource) intn(n int) int { return s.next() % n }

// amount picks milli-CPU or MiB from a ladder that includes the edges: tiny, exact halves of
// hosts, and larger than any host.
func (s *bytesource) amount(scale int64) int64 {
	ladder := []int64{1, 50, 100, 250, 500, 1000, 2000, 3750, 4000, 8000, 16000, 32000, 64000, 1 << 20}
	return ladder[s.intn(len(ladder))] * scale / 1000
}

// fuzzInstance builds a small instance from data: up to 8 hosts in zones a and b (or none),
// up to 4 shapes (some smaller than what nodeReserved keeps), up to 8 workloads of any tier
// with spreads and selectors, and overheads from zero up.
func fuzzInstance(data []byte) place.Input {
	s := &bytesource{data}
	f := &v1alpha1.Fleet{Metadata: v1alpha1.ObjectMeta{Name: "fuzz"}}
	for i := range 1 + s.intn(8) {
		labels := map[string]string{}
		if z := s.intn(3); z > 0 {
			labels["zone"] = string(rune('a' + z - 1))
		}
		if s.intn(2) == 0 {
			f.Spec.Hosts = append(f.Spec.Hosts, v1alpha1.Host{Name: fmt.Sprintf("h%d", i),
				Capacity: v1alpha1.Capacity{CPU: milli(max(1, s.amount(1000))), Memory: mib(max(1, s.amount(4096)))}, Labels: labels})
		} else {
			f.Spec.HostPools = append(f.Spec.HostPools, v1alpha1.HostPool{Prefix: fmt.Sprintf("p%dx", i), Count: int32(1 + s.intn(3)),
				Capacity: v1alpha1.Capacity{CPU: milli(max(1, s.amount(1000))), Memory: mib(max(1, s.amount(4096)))}, Labels: labels})
		}
	}
	for i := range s.intn(5) {
		f.Spec.NodeShapes = append(f.Spec.NodeShapes, v1alpha1.NodeShape{Name: fmt.Sprintf("s%d", i), CPU: milli(max(1, s.amount(250))), Memory: mib(max(1, s.amount(1024)))})
	}
	if s.intn(2) == 0 {
		f.Spec.Overheads.VM = &v1alpha1.Capacity{CPU: milli(s.amount(10)), Memory: mib(s.amount(32))}
		f.Spec.Overheads.Sandbox = &v1alpha1.Capacity{CPU: milli(s.amount(10)), Memory: mib(s.amount(32))}
		f.Spec.Overheads.NodeReserved = &v1alpha1.Capacity{CPU: milli(s.amount(20)), Memory: mib(s.amount(64))}
	}
	f.SetDefaults()
	in := place.Input{Fleet: f}
	for i := range s.intn(9) {
		tier := v1alpha1.Tiers[s.intn(3)]
		w := &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: fmt.Sprintf("w%d", i),
			Labels: map[string]string{v1alpha1.LabelTenant: fmt.Sprintf("t%d", s.intn(3))}}}
		n := int32(s.intn(7))
		w.Spec.Replicas = &n
		w.Spec.Isolation = v1alpha1.Isolation(tier)
		w.Spec.Resources.CPU, w.Spec.Resources.Memory = milli(max(1, s.amount(100))), mib(max(1, s.amount(256)))
		w.Spec.Placement.Spread = []v1alpha1.Spread{"", "", v1alpha1.SpreadHost, v1alpha1.SpreadZone}[s.intn(4)]
		if z := s.intn(4); z > 0 {
			w.Spec.Placement.HostSelector = map[string]string{"zone": string(rune('a' + z - 1))}
		}
		w.SetDefaults()
		in.Workloads = append(in.Workloads, place.Item{Workload: w, Tier: tier})
	}
	return in
}

// FuzzPlan plans instances made from the fuzzer's bytes and checks every invariant of the
// plan with the independent checker, audits the planner's bookkeeping, and checks that
// planning is deterministic.
func FuzzPlan(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 0, 5, 7, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})
	f.Add([]byte("a fleet of hosts and some workloads spread over zones"))
	f.Add([]byte{7, 1, 2, 13, 13, 2, 1, 12, 12, 0, 1, 9, 9, 9, 9, 8, 6, 3, 2, 1, 0, 6, 5, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzInstance(data)
		opts := place.Options{Budget: []int{0, -1, 7}[len(data)%3]}
		if len(in.Workloads) > 0 {
			opts.Explain = in.Workloads[0].Workload.Metadata.Name
		}
		res, audit := place.PlanAndAudit(in, opts)
		if errs := append(check(in, &res.Plan), audit...); len(errs) > 0 {
			t.Fatalf("%d problems, first: %s", len(errs), errs[0])
		}
		for _, u := range res.Plan.Unplaced {
			if strings.Contains(u.Reason, "%!") {
				t.Fatalf("malformed reason %q", u.Reason)
			}
		}
		if plan := place.Plan(in, opts); mustJSON(t, plan.Plan) != mustJSON(t, res.Plan) {
			t.Fatal("the same input gave a different plan")
		}
	})
}
