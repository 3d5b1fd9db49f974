package scale

import (
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

// BenchmarkPolicies replays 14 days of synthetic demand at 5-minute resolution (five seeds)
// for a container and a VM workload of 1-core replicas, and reports each policy's mean slack
// and shortage over the seeds as slack-% and shortage-%, for benchstat.
func BenchmarkPolicies(b *testing.B) {
	const seeds = 5
	traces := make([]*Trace, seeds)
	for s := range traces {
		traces[s] = Synthetic(14, 5*time.Minute, int64(s+1), SynthOptions{})
	}
	for _, tier := range []v1alpha1.Tier{v1alpha1.TierContainer, v1alpha1.TierVM} {
		for i, policy := range []string{Reactive, Predictive, Oracle} {
			b.Run("tier="+string(tier)+"/policy="+policy, func(b *testing.B) {
				var slack, short, hours float64
				for b.Loop() {
					slack, short, hours = 0, 0, 0
					for _, tr := range traces {
						rep, err := Simulate(SimInput{Trace: tr, Policy: PolicyFor(&v1alpha1.Scaling{Max: 1000}), ReplicaCPU: 1, Tier: tier})
						if err != nil {
							b.Fatal(err)
						}
						r := rep.Policies[i]
						slack += r.SlackPercent / seeds
						short += r.ShortagePercent / seeds
						hours += r.ReplicaHours / seeds
					}
				}
				b.ReportMetric(slack, "slack-%")
				b.ReportMetric(short, "shortage-%")
				b.ReportMetric(hours, "replica-h")
			})
		}
	}
}
