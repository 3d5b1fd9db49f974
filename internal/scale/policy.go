package scale

import (
	"slices"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

// Policy is a workload's scaling policy, the spec.scaling of its Workload in plain numbers.
type Policy struct {
	// Min and Max bound the replica count.
	Min, Max int
	// TargetCPUPercent is the utilization, in percent of the CPU request, to aim for.
	TargetCPUPercent int
	// Predictive provisions ahead of forecast demand; otherwise scaling is reactive only.
	Predictive bool
	// LeadSeconds is how far ahead predictive scaling provisions; 0 means the tier's start-up
	// time plus one decision interval.
	LeadSeconds int
	// ScaleInCooldownSeconds is how long after a scale-out the predictive policy removes no
	// replica.
	ScaleInCooldownSeconds int
}

// PolicyFor turns spec.scaling into a Policy. A nil spec.scaling gives the API's defaults
// with Min 1 and Max the largest replica count the API allows.
func PolicyFor(s *v1alpha1.Scaling) Policy {
	if s == nil {
		s = &v1alpha1.Scaling{Max: v1alpha1.MaxReplicas}
	}
	d := *s
	d.SetDefaults()
	return Policy{
		Min:                    int(d.Min),
		Max:                    int(d.Max),
		TargetCPUPercent:       int(d.TargetCPUPercent),
		Predictive:             d.Predictive,
		LeadSeconds:            int(d.LeadSeconds),
		ScaleInCooldownSeconds: int(*d.ScaleInCooldownSeconds),
	}
}

// target is the target utilization as a fraction.
func (p Policy) target() float64 { return float64(p.TargetCPUPercent) / 100 }

// Lead is how far ahead the predictive policy provisions for a tier that starts in startup,
// decided every interval: LeadSeconds when set, else startup plus one interval, so that
// replicas ordered now are ready when the forecast demand arrives.
func (p Policy) Lead(startup, interval time.Duration) time.Duration {
	if p.LeadSeconds > 0 {
		return time.Duration(p.LeadSeconds) * time.Second
	}
	return startup + interval
}

// Startup is tier's start-up time: overrides[tier] when it is there, else DefaultStartup's.
func Startup(tier v1alpha1.Tier, overrides map[v1alpha1.Tier]time.Duration) time.Duration {
	if d, ok := overrides[tier]; ok {
		return d
	}
	return DefaultStartup()[tier]
}

// MedianStartup returns the median of measured start-up times and how many there are (0:
// none, and the duration is zero). The daemon measures start-ups on its host, the operator
// reads them from the cluster's pods; both take this median as the tier's start-up time.
// samples is not changed.
func MedianStartup(samples []time.Duration) (time.Duration, int) {
	if len(samples) == 0 {
		return 0, 0
	}
	l := slices.Sorted(slices.Values(samples))
	mid := len(l) / 2
	if len(l)%2 == 1 {
		return l[mid], len(l)
	}
	return (l[mid-1] + l[mid]) / 2, len(l)
}
