package v1alpha1

import "time"

// KindHost is the kind of a daemon's report about the machine it runs on.
const KindHost = "Host"

// HostObject is a Host document: one machine that runs strata, as its daemon reports it
// at every heartbeat. Users read it (`strata get hosts`); only the daemon writes it. The
// Go name differs from the kind because Host is the planner's description of a machine
// in a Fleet.
type HostObject struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta  `json:"metadata"`
	Status   *HostStatus `json:"status,omitempty"`
}

// HostStatus is what the daemon observed on its machine at LastHeartbeatTime.
type HostStatus struct {
	// Ready reports that every configured driver passed its checks.
	Ready bool `json:"ready"`
	// LastHeartbeatTime is when the daemon last wrote this status; a daemon that stopped
	// leaves it behind, so readers judge staleness by its age (the heartbeat runs every
	// HeartbeatSeconds).
	LastHeartbeatTime time.Time `json:"lastHeartbeatTime"`
	HeartbeatSeconds  int32     `json:"heartbeatSeconds"`
	// Version is the daemon's version; Kernel, OS and Arch describe the machine.
	Version string `json:"version"`
	Kernel  string `json:"kernel,omitempty"`
	OS      string `json:"os,omitempty"`
	Arch    string `json:"arch"`
	// Accelerator is what VMs run with: "kvm", or "tcg" (software emulation); empty
	// without a VM tier.
	Accelerator string `json:"accelerator,omitempty"`
	// Capacity is the machine's CPUs and memory; Allocated is the sum of the resources
	// of the instances that run now.
	Capacity  Capacity `json:"capacity"`
	Allocated Capacity `json:"allocated"`
	// Instances counts the instances that run now.
	Instances int32 `json:"instances"`
	// Tiers are the tiers some driver serves here.
	Tiers []Tier `json:"tiers"`
	// Drivers are the drivers' checks, plus one entry per driver that could not start.
	Drivers []DriverStatus `json:"drivers"`
}

// DriverStatus is one readiness check of a runtime driver.
type DriverStatus struct {
	// Name is what was checked: containerd, runc, gvisor, qemu, guest.
	Name    string `json:"name"`
	Tiers   []Tier `json:"tiers,omitempty"`
	Ready   bool   `json:"ready"`
	Message string `json:"message,omitempty"`
}
