package v1alpha1

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status

// Segment is a network zone: workloads in it reach each other; across segments only
// the flows in Allow pass.
type Segment struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta     `json:"metadata"`
	Spec     SegmentSpec    `json:"spec"`
	Status   *SegmentStatus `json:"status,omitempty"`
}

// SegmentSpec is what the user wants of a segment.
type SegmentSpec struct {
	// Subnet is an IPv4 CIDR; empty means one is allocated from the daemon's pool.
	Subnet string      `json:"subnet,omitempty"`
	Allow  []AllowRule `json:"allow,omitempty"`
	// Egress is allow or deny: whether workloads reach outside the host.
	Egress Egress `json:"egress,omitempty"`
}

// AllowRule admits traffic from another segment to some ports of this one.
type AllowRule struct {
	From  SegmentRef `json:"from"`
	Ports []FlowPort `json:"ports,omitempty"`
}

// SegmentRef names a segment.
type SegmentRef struct {
	Segment string `json:"segment"`
}

// FlowPort is a destination port of an allowed flow.
type FlowPort struct {
	Port     int32    `json:"port"`
	Protocol Protocol `json:"protocol,omitempty"`
}

// Egress is allow or deny.
type Egress string

// Egress values.
const (
	EgressAllow Egress = "allow"
	EgressDeny  Egress = "deny"
)

// SegmentStatus is what strata set up for a segment.
type SegmentStatus struct {
	Subnet    string `json:"subnet,omitempty"`
	Gateway   string `json:"gateway,omitempty"`
	Bridge    string `json:"bridge,omitempty"`
	Workloads int    `json:"workloads"`
	// Conditions: Ready says whether the segment's bridge is set up, and why not.
	Conditions []Condition `json:"conditions,omitempty"`
}
