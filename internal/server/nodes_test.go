package server

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// TestNodeVMUsage: a node VM's usage is the sum of its replicas' requests, each replica
// counted once, under its own workload (web-api-0 is web-api's, not web's).
func TestNodeVMUsage(t *testing.T) {
	wl := func(name, cpu, mem string) *v1alpha1.Workload {
		w := &v1alpha1.Workload{}
		w.Metadata.Name = name
		w.Spec.Resources.CPU = resource.MustParse(cpu)
		w.Spec.Resources.Memory = resource.MustParse(mem)
		return w
	}
	wls := []*v1alpha1.Workload{wl("web", "100m", "64Mi"), wl("web-api", "250m", "128Mi"), wl("db", "1", "1Gi")}
	started := time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)
	got := nodeVM(runtime.Node{
		Name: "nodevm-0a1b2c3d4e5f", Class: "acme/internal/internal", CPUMilli: 1000, MemoryBytes: 1 << 30,
		State: runtime.StateRunning, StartedAt: started, Instances: []string{"web-0", "web-1", "web-api-0"},
	}, wls)
	if got.Usage.CPU.MilliValue() != 450 || got.Usage.Memory.Value() != 256<<20 {
		t.Errorf("usage %s CPU, %s memory; want 450m and 256Mi", got.Usage.CPU.String(), got.Usage.Memory.String())
	}
	if got.Shape.CPU.String() != "1" || got.Shape.Memory.String() != "1Gi" {
		t.Errorf("shape %s CPU, %s memory; want 1 and 1Gi", got.Shape.CPU.String(), got.Shape.Memory.String())
	}
	want := []v1alpha1.NodeVMReplica{{ID: "web-0", Workload: "web"}, {ID: "web-1", Workload: "web"}, {ID: "web-api-0", Workload: "web-api"}}
	if len(got.Replicas) != len(want) {
		t.Fatalf("replicas %+v, want %+v", got.Replicas, want)
	}
	for i := range want {
		if got.Replicas[i] != want[i] {
			t.Errorf("replica %d: %+v, want %+v", i, got.Replicas[i], want[i])
		}
	}
	if got.State != "running" || got.StartedAt == nil || !got.StartedAt.Equal(started) || got.Class != "acme/internal/internal" {
		t.Errorf("node %+v", got)
	}
}

// TestNodeVMDriverUsage: a driver that reports its node VM's usage (the requests its
// replicas started with) and shape name is taken at its word, also when a workload's
// requests have changed since.
func TestNodeVMDriverUsage(t *testing.T) {
	w := &v1alpha1.Workload{}
	w.Metadata.Name = "web"
	w.Spec.Resources.CPU = resource.MustParse("1")
	w.Spec.Resources.Memory = resource.MustParse("1Gi")
	got := nodeVM(runtime.Node{
		Name: "nodevm-0a1b2c3d4e5f-1", Class: "acme/internal/internal", Shape: "small", CPUMilli: 1000, MemoryBytes: 512 << 20,
		UsedCPUMilli: 200, UsedMemoryBytes: 200 << 20, State: runtime.StateRunning, Instances: []string{"web-0", "web-1"},
	}, []*v1alpha1.Workload{w})
	if got.Usage.CPU.MilliValue() != 200 || got.Usage.Memory.Value() != 200<<20 || got.ShapeName != "small" {
		t.Errorf("usage %s CPU, %s memory, shape %q; want the driver's 200m, 200Mi and small", got.Usage.CPU.String(), got.Usage.Memory.String(), got.ShapeName)
	}
	if len(got.Replicas) != 2 || got.Replicas[1].Workload != "web" {
		t.Errorf("replicas %+v", got.Replicas)
	}
}
