package v1alpha1

// Tier is an isolation tier. Tiers are ordered: container < sandbox < vm.
type Tier string

// The isolation tiers, weakest first.
const (
	TierContainer Tier = "container" // a container under runc: shared kernel, namespaces and cgroups
	TierSandbox   Tier = "sandbox"   // a container under gVisor: a user-space kernel between it and the host
	TierVM        Tier = "vm"        // a virtual machine: its own kernel
)

// Tiers lists the tiers from weakest to strongest.
var Tiers = []Tier{TierContainer, TierSandbox, TierVM}

// Rank orders tiers: 0 for container, 1 for sandbox, 2 for vm, -1 for anything else.
func (t Tier) Rank() int {
	switch t {
	case TierContainer:
		return 0
	case TierSandbox:
		return 1
	case TierVM:
		return 2
	}
	return -1
}

// Valid reports whether t is one of the three tiers.
func (t Tier) Valid() bool { return t.Rank() >= 0 }

// Weaker reports whether t isolates less than u.
func (t Tier) Weaker(u Tier) bool { return t.Rank() < u.Rank() }

// Isolation is what a Workload asks for: a tier, or auto to let assessment decide.
type Isolation string

// IsolationAuto lets assessment choose the tier.
const IsolationAuto Isolation = "auto"

// Isolations lists the accepted values of spec.isolation.
var Isolations = []Isolation{IsolationAuto, Isolation(TierContainer), Isolation(TierSandbox), Isolation(TierVM)}

// Tier returns the tier an explicit isolation asks for, and false for auto.
func (i Isolation) Tier() (Tier, bool) {
	t := Tier(i)
	return t, t.Valid()
}
