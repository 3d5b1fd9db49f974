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
