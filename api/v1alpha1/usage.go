package v1alpha1

import "time"

// UsageHistory is what a workload's instances used over the recent past, sampled by the
// daemon (GET .../workloads/NAME/history). The dashboard draws it; the scaler reads it.
type UsageHistory struct {
	Workload string `json:"workload"`
	// IntervalSeconds is the time between two samples.
	IntervalSeconds int32           `json:"intervalSeconds"`
	Instances       []InstanceUsage `json:"instances"`
}

// InstanceUsage is one instance's samples, oldest first.
type InstanceUsage struct {
	Instance string       `json:"instance"`
	Points   []UsagePoint `json:"points"`
}

// UsagePoint is one sample: the CPU the instance used since the previous sample, in
// cores (1 = one CPU busy all the time), and the memory it held at Time.
type UsagePoint struct {
	Time        time.Time `json:"time"`
	CPUCores    float64   `json:"cpuCores"`
	MemoryBytes int64     `json:"memoryBytes"`
}
