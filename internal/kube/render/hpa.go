package render

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"

	"strata.dev/strata/api/v1alpha1"
)

// autoscaler renders spec.scaling of a container- or sandbox-tier workload as a
// HorizontalPodAutoscaler of its Deployment or StatefulSet (kind): the same HPA formula the
// single host runs, on CPU utilization against resources.cpu, with the scale-in cooldown as
// the scale-down stabilization window. Predictive scaling has no Kubernetes object: strata
// operator runs the forecast and raises the HPA's minReplicas ahead of demand; applied
// without the operator, the HPA scales reactively only, and a note says so.
func (r *renderer) autoscaler(w *v1alpha1.Workload, kind string, labels map[string]string) {
	sc := w.Spec.Scaling
	minReplicas, target := sc.Min, sc.TargetCPUPercent
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   typeMeta("autoscaling/v2", "HorizontalPodAutoscaler"),
		ObjectMeta: objectMeta(w.Metadata.Name, r.opts.Namespace, labels),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: kind, Name: w.Metadata.Name},
			MinReplicas:    &minReplicas,
			MaxReplicas:    sc.Max,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &target},
				},
			}},
		},
	}
	if sc.ScaleInCooldownSeconds != nil {
		window := *sc.ScaleInCooldownSeconds
		hpa.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &window},
		}
	}
	if sc.Predictive {
		r.note(w, "spec.scaling.predictive has no Kubernetes object: strata operator runs the forecast and raises the HorizontalPodAutoscaler's minReplicas ahead of demand; applied without the operator, the HorizontalPodAutoscaler scales it reactively only (the same formula, without the forecast)")
	}
	r.add(hpa)
}
