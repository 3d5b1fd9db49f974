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
	// NodeVM is where the workload's replicas run: inside node VMs of their isolation class,
	// or on the host's kernel.
	NodeVM *NodeVMDecision `json:"nodeVM,omitempty"`
}

// NodeVMDecision says whether a workload's replicas run inside node VMs or on the host's
// kernel, and why.
type NodeVMDecision struct {
	// Run is true when the replicas run inside node VMs of Class.
	Run bool `json:"run"`
	// Class is the replicas' isolation class (placement.isolationClass, or
	// <tenant>/<trust>/<data>); empty for the vm tier, whose replicas are VMs of their own.
	Class string `json:"class,omitempty"`
	// Reason says what decided it: the policy, placement.nodeVM, or the tier.
	Reason string `json:"reason"`
	// Warning is set when placement.nodeVM keeps replicas on the host that the policy sends
	// into node VMs, or asks for node VMs where there are none to ask for (the vm tier).
	// It is honoured and reported, never refused.
	Warning string `json:"warning,omitempty"`
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
