package operator

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/kube/render"
	"strata.dev/strata/internal/scale"
)

// startups are the start-up times of the cluster's strata pods, by tier: from a pod's
// creation to its Ready condition, for pods that became ready once and whose containers
// never restarted (a restart moves the condition's time). That span holds scheduling,
// the image pull and the readiness probe: what a new replica costs before it serves.
type startups map[v1alpha1.Tier][]time.Duration

// measureStartups lists the strata pods the scaler may see (one namespace, or all) and
// returns their start-up times; with no pod reader it measures nothing.
func (s *Scaler) measureStartups(ctx context.Context) (startups, error) {
	if s.o.Pods == nil {
		return nil, nil
	}
	var pods corev1.PodList
	opts := []client.ListOption{client.HasLabels{render.LabelWorkload}}
	if s.namespace != "" {
		opts = append(opts, client.InNamespace(s.namespace))
	}
	if err := s.o.Pods.List(ctx, &pods, opts...); err != nil {
		return nil, fmt.Errorf("list pods for their start-up times: %w", err)
	}
	out := startups{}
	for i := range pods.Items {
		p := &pods.Items[i]
		d, ok := podStartup(p)
		if !ok {
			continue
		}
		tier := v1alpha1.Tier(p.Labels[render.LabelTier])
		out[tier] = append(out[tier], d)
	}
	return out, nil
}

// podStartup is the time from p's creation to its becoming ready, when p became ready once.
func podStartup(p *corev1.Pod) (time.Duration, bool) {
	if p.DeletionTimestamp != nil {
		return 0, false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.RestartCount > 0 {
			return 0, false
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			if d := c.LastTransitionTime.Sub(p.CreationTimestamp.Time); d >= 0 {
				return d, true
			}
			return 0, false // clocks that disagree
		}
	}
	return 0, false
}

// median returns the median start-up of tier and how many pods it is of.
func (st startups) median(tier v1alpha1.Tier) (time.Duration, int) {
	return scale.MedianStartup(st[tier])
}

// lead is how far ahead the scaler provisions tier under policy p, and a note saying
// where that came from: spec.scaling.leadSeconds, the median start-up of the tier's pods in
// the cluster, or, before one is ready, the benchmarked default.
func (s *Scaler) lead(p scale.Policy, tier v1alpha1.Tier, measured func() startups) (time.Duration, string) {
	if p.LeadSeconds > 0 {
		return p.Lead(0, s.o.Interval), fmt.Sprintf("lead %ds from spec.scaling.leadSeconds", p.LeadSeconds)
	}
	if d, n := measured().median(tier); n > 0 {
		return p.Lead(d, s.o.Interval), fmt.Sprintf("lead = %s start-up (median of %d ready %s pods in the cluster, creation to Ready) + %s interval",
			d.Round(100*time.Millisecond), n, tier, s.o.Interval)
	}
	d := scale.Startup(tier, s.o.Startup)
	return p.Lead(d, s.o.Interval), fmt.Sprintf("lead = %s start-up (no ready %s pod measured yet: the benchmarked default) + %s interval", d, tier, s.o.Interval)
}
