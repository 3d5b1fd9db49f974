package assess

import (
	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/inventory"
)

// Report assesses every item of an inventory. An item whose assessment fails (a rule that
// cannot be evaluated on it) is left out of the report and named in the errors.
func (e *Engine) Report(set inventory.Set) (*v1alpha1.AssessmentReport, diag.List) {
	r := &v1alpha1.AssessmentReport{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindAssessmentReport},
		Items:    make([]v1alpha1.AssessmentItem, 0, len(set.Items)),
		Skipped:  set.Skipped,
	}
	var errs diag.List
	for i := range set.Items {
		it := &set.Items[i]
		d, err := e.Assess(&it.Workload)
		if err != nil {
			errs = append(errs, &diag.Error{File: it.Source.File, Line: it.Source.Line, Msg: "workload " + it.Workload.Metadata.Name + ": " + err.Error(),
				Hint: "fix the rule, or guard the fields it reads with has()"})
			continue
		}
		r.Items = append(r.Items, v1alpha1.AssessmentItem{
			Name: it.Workload.Metadata.Name, Source: it.Source, Tier: d.Tier, Requested: d.Requested,
			Reasons: d.Reasons, Violations: d.Violations, NodeVM: &d.NodeVM,
		})
		r.Summary.Add(d.Tier)
	}
	return r, errs
}
