package render

import (
	"maps"

	"strata.dev/strata/api/v1alpha1"
)

// Labels that every rendered object carries, and that selectors and policies match.
const (
	LabelSegment  = "strata.dev/segment"
	LabelWorkload = "strata.dev/workload"
	LabelTier     = "strata.dev/tier"
	// LabelName and LabelManagedBy are Kubernetes' recommended labels; managed-by is ManagedBy.
	LabelName      = "app.kubernetes.io/name"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "strata"
)

// workloadLabels are the labels of w's objects and pods: the workload's own labels, then
// strata's, which win.
func workloadLabels(w *v1alpha1.Workload, tier v1alpha1.Tier) map[string]string {
	l := maps.Clone(w.Metadata.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[LabelSegment] = w.Spec.Segment
	l[LabelWorkload] = w.Metadata.Name
	l[LabelTier] = string(tier)
	l[LabelName] = w.Metadata.Name
	l[LabelManagedBy] = ManagedBy
	return l
}

// selectorOf selects the pods of w (VMs' pods too).
func selectorOf(w *v1alpha1.Workload) map[string]string {
	return map[string]string{LabelWorkload: w.Metadata.Name}
}

// segmentLabels are the labels of a segment's NetworkPolicy.
func segmentLabels(segment string) map[string]string {
	return map[string]string{LabelSegment: segment, LabelName: segment, LabelManagedBy: ManagedBy}
}
