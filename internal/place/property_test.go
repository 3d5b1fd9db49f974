package place_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/place"
)

// TestProperties plans hundreds of seeded random instances (spreads, selectors that match
// nothing, unequal hosts, three tiers, overheads) and checks each plan with the independent
// checker: no capacity exceeded at either level, one class per node VM, spreads and selectors
// kept, every replica placed or given a reason. It also checks that the same input gives the
// same plan and that Plan leaves its input alone.
func TestProperties(t *testing.T) {
	configs := []genConfig{
		{hosts: 6, workloads: 8, maxReplicas: 4, classes: 2, vm: 0.3, sandbox: 0.2, spread: 0.3, selector: 0.2},
		{hosts: 20, workloads: 30, maxReplicas: 6, classes: 4, vm: 0.2, sandbox: 0.3, spread: 0.4, selector: 0.3},
		{hosts: 3, workloads: 20, maxReplicas: 8, classes: 3, vm: 0.3, sandbox: 0.2, spread: 0.5, selector: 0.2},
		{hosts: 60, workloads: 80, maxReplicas: 10, classes: 8, vm: 0.1, sandbox: 0.2, spread: 0.3, selector: 0.1},
	}
	const perConfig = 60
	for ci, c := range configs {
		for seed := range uint64(perConfig) {
			t.Run(fmt.Sprintf("config%d/seed%d", ci, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, uint64(ci)))
				in := genInstance(rng, c)
				before := mustJSON(t, in)
				opts := place.Options{Budget: []int{0, -1, 50}[seed%3]}
				if len(in.Workloads) > 0 {
					opts.Explain = in.Workloads[rng.IntN(len(in.Workloads))].Workload.Metadata.Name
				}
				res := place.Plan(in, opts)
				for _, e := range check(in, &res.Plan) {
					t.Error(e)
				}
				audited, errs := place.PlanAndAudit(in, opts)
				for _, e := range errs {
					t.Error(e)
				}
				if mustJSON(t, audited.Plan) != mustJSON(t, res.Plan) {
					t.Error("the audited plan differs from the plan")
				}
				if after := mustJSON(t, in); after != before {
					t.Error("Plan changed its input")
				}
				if again := place.Plan(in, opts); mustJSON(t, again.Plan) != mustJSON(t, res.Plan) {
					t.Error("the same input gave a different plan")
				}
				if len(res.Plan.Explanations) == 0 && replicasOf(in, opts.Explain) > 0 {
					t.Errorf("no explanation for %s", opts.Explain)
				}
				for _, x := range res.Plan.Explanations {
					if x.Decision == "" || strings.Contains(x.Decision, "%!") {
						t.Errorf("explanation of %s/%d: %q", x.Workload, x.Replica, x.Decision)
					}
				}
				for _, u := range res.Plan.Unplaced {
					if strings.Contains(u.Reason, "%!") {
						t.Errorf("reason of %s/%d is malformed: %q", u.Workload, u.Replica, u.Reason)
					}
				}
			})
		}
	}
}

func replicasOf(in place.Input, name string) int32 {
	for _, it := range in.Workloads {
		if it.Workload.Metadata.Name == name {
			return it.Workload.Spec.ReplicaCount()
		}
	}
	return 0
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConcurrentPlans plans one input from several goroutines at once: the planner keeps no
// global state and writes nothing of its input (go test -race watches), and every plan is the
// same.
func TestConcurrentPlans(t *testing.T) {
	in := genInstance(rand.New(rand.NewPCG(5, 5)), genConfig{hosts: 30, workloads: 40, maxReplicas: 6, classes: 4, vm: 0.3, sandbox: 0.2, spread: 0.3, selector: 0.2})
	opts := place.Options{Explain: in.Workloads[0].Workload.Metadata.Name}
	want := mustJSON(t, place.Plan(in, opts).Plan)
	plans := make([]string, 4)
	var wg sync.WaitGroup
	for i := range plans {
		wg.Go(func() {
			b, err := json.Marshal(place.Plan(in, opts).Plan)
			if err != nil {
				panic(err)
			}
			plans[i] = string(b)
		})
	}
	wg.Wait()
	for i, got := range plans {
		if got != want {
			t.Errorf("plan %d differs from the first", i)
		}
	}
}

// TestDaemonOnEveryHost: a workload spread over hosts with a replica for every host, next to
// enough other work to fill a part of the fleet, is placed first and so finds room on every
// host, as container replicas in node VMs and as VMs.
func TestDaemonOnEveryHost(t *testing.T) {
	const hosts = 300
	in := basicInstance(hosts, 3000, 3, false)
	for _, tier := range []v1alpha1.Tier{v1alpha1.TierContainer, v1alpha1.TierVM} {
		w := &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: "agent-" + string(tier)}}
		n := int32(hosts)
		w.Spec.Replicas = &n
		w.Spec.Placement.Spread = v1alpha1.SpreadHost
		w.SetDefaults()
		in.Workloads = append(in.Workloads, place.Item{Workload: w, Tier: tier})
	}
	res := place.Plan(in, place.Options{})
	for _, e := range check(in, &res.Plan) {
		t.Error(e)
	}
	if n := res.Plan.Summary.UnplacedCount; n > 0 {
		t.Errorf("%d replicas unplaced; first: %+v", n, res.Plan.Unplaced[0])
	}
}
