package v1alpha1

// AssessmentReport is what `strata assess -o json` prints: one item per workload found in the
// inputs, with the decided tier and the reasons for it.
type AssessmentReport struct {
	TypeMeta `json:",inline"`
	Items    []AssessmentItem `json:"items"`
	// Skipped lists input objects that are not workloads (a Service, a ConfigMap, ...).
	Skipped []SkippedObject `json:"skipped,omitempty"`
	Summary TierSummary     `json:"summary"`
}

// AssessmentItem is the decision for one workload.
type AssessmentItem struct {
	Name       string      `json:"name"`
	Source     Source      `json:"source"`
	Tier       Tier        `json:"tier"`
	Requested  Isolation   `json:"requested"`
	Reasons    []Reason    `json:"reasons"`
	Violations []Violation `json:"violations"`
}

// Source is where an item came from.
type Source struct {
	File string `json:"file"`
	Line int    `json:"line"`
	// Format is the kind of input: strata, kubernetes, compose or rvtools.
	Format Format `json:"format"`
	// Kind is the kind of the source object (Deployment, service, VM, ...), when it has one.
	Kind string `json:"kind,omitempty"`
	// Name is the object's name in the source when strata had to change it into a DNS label.
	Name string `json:"name,omitempty"`
}

// Format is a kind of input document.
type Format string

// Input formats.
const (
	FormatStrata     Format = "strata"
	FormatKubernetes Format = "kubernetes"
	FormatCompose    Format = "compose"
	FormatRVTools    Format = "rvtools"
)

// Violation is an explicit spec.isolation that a policy rule does not allow.
type Violation struct {
	Rule    string `json:"rule"`
	Tier    Tier   `json:"tier"`
	Message string `json:"message"`
}

// SkippedObject is an input object that describes no workload.
type SkippedObject struct {
	Source Source `json:"source"`
	Reason string `json:"reason"`
}

// TierSummary counts items per decided tier.
type TierSummary struct {
	Container int `json:"container"`
	Sandbox   int `json:"sandbox"`
	VM        int `json:"vm"`
}

// Add counts one item of tier t.
func (s *TierSummary) Add(t Tier) {
	switch t {
	case TierContainer:
		s.Container++
	case TierSandbox:
		s.Sandbox++
	case TierVM:
		s.VM++
	}
}
