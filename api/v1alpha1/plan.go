package v1alpha1

// KindPlacementPlan is the kind of the document `strata plan -o json` prints.
const KindPlacementPlan = "PlacementPlan"

// PlacementPlan says which node VMs a fleet needs and where every replica goes: container and
// sandbox replicas into node VMs, node VMs and vm replicas onto hosts. Replicas that cannot be
// placed are listed with the reason.
type PlacementPlan struct {
	TypeMeta   `json:",inline"`
	Nodes      []PlannedNode      `json:"nodes"`
	Placements []ReplicaPlacement `json:"placements"`
	Unplaced   []UnplacedReplica  `json:"unplaced"`
	Summary    PlanSummary        `json:"summary"`
	// Hosts gives the load of every host the plan uses, in fleet order.
	Hosts []HostUsage `json:"hosts,omitempty"`
	// Explanations says, for each replica of the workload asked about, why it went where it did.
	Explanations []ReplicaExplanation `json:"explanations,omitempty"`
	// Forecast says how each workload sized from a demand trace (strata plan --forecast) got
	// its replica count.
	Forecast []ForecastSizing `json:"forecast,omitempty"`
}

// ForecastSizing is the replica count of one workload sized for the forecast peak of its
// demand over the planned days.
type ForecastSizing struct {
	Workload string `json:"workload"`
	Trace    string `json:"trace"`
	// Model is the forecasting model the backtest chose.
	Model string `json:"model"`
	Days  int    `json:"days"`
	// PeakCores is the highest forecast demand; HistoryPeakCores the highest in the trace.
	PeakCores        float64 `json:"peakCores"`
	HistoryPeakCores float64 `json:"historyPeakCores"`
	// ReplicaCores is what one replica serves: resources.cpu at targetCPUPercent.
	ReplicaCores float64 `json:"replicaCores"`
	// Replicas is what the plan places: the peak over ReplicaCores, at least spec.scaling.min.
	Replicas int32 `json:"replicas"`
	// Note says what bounded it (spec.scaling.max lower than the need, say).
	Note string `json:"note,omitempty"`
}

// PlannedNode is a node VM the plan creates: a shape of the fleet, holding replicas of one
// isolation class, on one host.
type PlannedNode struct {
	Name  string `json:"name"`
	Shape string `json:"shape"`
	Host  string `json:"host"`
	Class string `json:"class"`
	// Utilization is the share of the node VM's shape its replicas request; only the
	// daemon's own placement (strata plan --host) reports it.
	Utilization *Utilization `json:"utilization,omitempty"`
}

// ReplicaPlacement is where one replica runs. Node is empty for vm replicas, which run
// directly on their host, and, in the daemon's own placement (strata plan --host), for
// container and sandbox replicas that run on the host's kernel.
type ReplicaPlacement struct {
	Workload string `json:"workload"`
	Replica  int32  `json:"replica"`
	Tier     Tier   `json:"tier"`
	Node     string `json:"node,omitempty"`
	Host     string `json:"host"`
}

// UnplacedReplica is a replica the fleet cannot hold, and the constraint that stops it.
type UnplacedReplica struct {
	Workload string `json:"workload"`
	Replica  int32  `json:"replica"`
	Reason   string `json:"reason"`
}

// PlanSummary counts what the plan uses. LowerBound is a number of hosts no plan can go below
// for the replicas placed; Gap is (HostsUsed - LowerBound) / LowerBound.
type PlanSummary struct {
	HostsUsed  int   `json:"hostsUsed"`
	Nodes      int   `json:"nodes"`
	LowerBound int   `json:"lowerBound"`
	ElapsedMs  int64 `json:"elapsedMs"`
	// Gap is how far HostsUsed is above LowerBound, as a fraction of it (0.1 = 10%).
	Gap float64 `json:"gap"`
	// HostsAvailable is the number of hosts in the fleet.
	HostsAvailable int `json:"hostsAvailable"`
	Replicas       int `json:"replicas"`
	Placed         int `json:"placed"`
	UnplacedCount  int `json:"unplaced"`
	// Utilization is the share of the used hosts' capacity that the plan takes.
	Utilization Utilization `json:"utilization"`
}

// Utilization is a share of capacity in use, per resource, from 0 to 1.
type Utilization struct {
	CPU    float64 `json:"cpu"`
	Memory float64 `json:"memory"`
}

// HostUsage is the load of one host in a plan: the share of its capacity taken by node VMs and
// VMs with their overheads.
type HostUsage struct {
	Name   string  `json:"name"`
	CPU    float64 `json:"cpu"`
	Memory float64 `json:"memory"`
	Nodes  int     `json:"nodes"`
	VMs    int     `json:"vms"`
}

// ReplicaExplanation tells why one replica went where it did: the decision, what happened to
// it afterwards while the plan was improved, and the hosts that were not chosen, with why.
type ReplicaExplanation struct {
	Workload string `json:"workload"`
	Replica  int32  `json:"replica"`
	Tier     Tier   `json:"tier"`
	// Node and Host are where the replica ends up; both are empty when it is unplaced.
	Node string `json:"node,omitempty"`
	Host string `json:"host,omitempty"`
	// Decision is how the replica was first placed, or why it could not be.
	Decision string `json:"decision"`
	// Score is the chosen candidate's score: the squared, capacity-normalized room left after
	// placing (lower is a tighter fit).
	Score float64 `json:"score,omitempty"`
	// Steps are later changes: moves while draining a host, node VMs merged or resized.
	Steps []string `json:"steps,omitempty"`
	// Rejected lists the first hosts not chosen, with why; RejectedCounts counts every host
	// not chosen by reason.
	Rejected       []HostRejection  `json:"rejected,omitempty"`
	RejectedCounts []RejectionCount `json:"rejectedCounts,omitempty"`
}

// HostRejection is one host that was not chosen for a replica, and why.
type HostRejection struct {
	Host   string `json:"host"`
	Reason string `json:"reason"`
}

// RejectionCount is how many hosts were not chosen for one kind of reason.
type RejectionCount struct {
	Reason string `json:"reason"`
	Hosts  int    `json:"hosts"`
}
