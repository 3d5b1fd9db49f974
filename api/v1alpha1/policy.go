package v1alpha1

// AssessmentPolicy is a list of CEL rules that set tier floors.
type AssessmentPolicy struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     PolicySpec `json:"spec"`
}

// PolicySpec holds the rules.
type PolicySpec struct {
	Rules []Rule `json:"rules"`
	// NodeVM decides which isolation classes run their container and sandbox replicas inside
	// node VMs; nil keeps the built-in choice (tenancy multi or data regulated).
	NodeVM *NodeVMRule `json:"nodeVM,omitempty"`
}

// NodeVMRule is a CEL condition over `class` (a map with name, tenant, trust, data and
// tenancy) that sends a class's replicas into node VMs when true.
type NodeVMRule struct {
	// When is true for the classes whose replicas run inside node VMs.
	When string `json:"when"`
	// Detail is an optional CEL expression giving a string about the class (which trait
	// decided); it becomes the reason, "policy: <detail>".
	Detail string `json:"detail,omitempty"`
}

// Rule yields a tier floor for every workload its When expression is true for.
type Rule struct {
	Name string `json:"name"`
	// When is a CEL expression over `workload` (the Workload as a map, defaults applied).
	When    string `json:"when"`
	Effect  Effect `json:"effect"`
	Tier    Tier   `json:"tier"`
	Message string `json:"message"`
	// Detail is an optional CEL expression giving a string about this workload (which OS
	// release, which capabilities); it is added to the message of the reason.
	Detail string `json:"detail,omitempty"`
}

// Effect is require (exactly this tier) or atLeast (this tier or stronger).
type Effect string

// Effects.
const (
	EffectRequire Effect = "require"
	EffectAtLeast Effect = "atLeast"
)
