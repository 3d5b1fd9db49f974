package place_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/place"
)

const mi = 1 << 20

// TestReplicaNeed: a container takes its requests of its node VM, a sandbox its requests
// and the sandbox overhead.
func TestReplicaNeed(t *testing.T) {
	o := place.FleetOverheads(nil)
	req := place.Amount{CPUMilli: 200, MemoryBytes: 100 * mi}
	if got := place.ReplicaNeed(v1alpha1.TierContainer, req, o); got != req {
		t.Errorf("container needs %v, want its requests %v", got, req)
	}
	want := place.Amount{CPUMilli: 250, MemoryBytes: 164 * mi} // the default sandbox overhead: 50m, 64Mi
	if got := place.ReplicaNeed(v1alpha1.TierSandbox, req, o); got != want {
		t.Errorf("sandbox needs %v, want %v", got, want)
	}
}

// TestFleetNodeShapes: a fleet's shapes allocate their size less nodeReserved and cost their
// size plus the VM overhead, with the fleet's overheads or the defaults; a shape the reserve
// leaves nothing of holds nothing.
func TestFleetNodeShapes(t *testing.T) {
	f := &v1alpha1.Fleet{Spec: v1alpha1.FleetSpec{NodeShapes: []v1alpha1.NodeShape{
		{Name: "small", CPU: resource.MustParse("1"), Memory: resource.MustParse("512Mi")},
		{Name: "tiny", CPU: resource.MustParse("1"), Memory: resource.MustParse("256Mi")},
	}}}
	reserve := v1alpha1.Capacity{CPU: resource.MustParse("100m"), Memory: resource.MustParse("256Mi")}
	f.Spec.Overheads.NodeReserved = &reserve
	got := place.FleetNodeShapes(f)
	want := []place.NodeShape{
		{Name: "small", Size: place.Amount{CPUMilli: 1000, MemoryBytes: 512 * mi}, Alloc: place.Amount{CPUMilli: 900, MemoryBytes: 256 * mi},
			Cost: place.Amount{CPUMilli: 1100, MemoryBytes: 768 * mi}}, // the default VM overhead: 100m, 256Mi
		{Name: "tiny", Size: place.Amount{CPUMilli: 1000, MemoryBytes: 256 * mi}, Alloc: place.Amount{CPUMilli: -1, MemoryBytes: -1},
			Cost: place.Amount{CPUMilli: 1100, MemoryBytes: 512 * mi}},
	}
	if len(got) != len(want) {
		t.Fatalf("shapes %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("shape %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	o := place.FleetOverheads(f)
	if s := place.MakeNodeShape("small", place.Amount{CPUMilli: 1000, MemoryBytes: 512 * mi}, o); s != want[0] {
		t.Errorf("MakeNodeShape: %+v, want %+v as the fleet's", s, want[0])
	}
	if place.ReplicaNeed(v1alpha1.TierContainer, place.Amount{CPUMilli: 1, MemoryBytes: 1}, o).Fits(got[1].Alloc) {
		t.Error("a replica fits a shape that nodeReserved leaves nothing of")
	}
}

// TestBestNode: a replica joins the open node VM it fills best, never one without room for
// it, and none when it fits none.
func TestBestNode(t *testing.T) {
	alloc := place.Amount{CPUMilli: 1000, MemoryBytes: 256 * mi}
	nodes := []place.NodeRoom{
		{Alloc: alloc, Used: place.Amount{CPUMilli: 100, MemoryBytes: 200 * mi}}, // 56Mi left
		{Alloc: alloc, Used: place.Amount{CPUMilli: 100, MemoryBytes: 100 * mi}}, // 156Mi left
		{Alloc: alloc, Used: place.Amount{}},                                     // empty
		{Alloc: alloc, Used: place.Amount{CPUMilli: 950, MemoryBytes: 0}},        // 50m left
	}
	for _, c := range []struct {
		name string
		need place.Amount
		want int
	}{
		{"the fullest with room", place.Amount{CPUMilli: 100, MemoryBytes: 50 * mi}, 0},
		{"skips one without memory", place.Amount{CPUMilli: 100, MemoryBytes: 100 * mi}, 1},
		{"skips two without memory", place.Amount{CPUMilli: 100, MemoryBytes: 200 * mi}, 2},
		{"exactly the room left", place.Amount{CPUMilli: 900, MemoryBytes: 56 * mi}, 0},
		{"nothing has room", place.Amount{CPUMilli: 100, MemoryBytes: 257 * mi}, -1},
	} {
		if got := place.BestNode(nodes, c.need); got != c.want {
			t.Errorf("%s: BestNode(%v) = %d, want %d", c.name, c.need, got, c.want)
		}
	}
	if got := place.BestNode(nil, place.Amount{CPUMilli: 1, MemoryBytes: 1}); got != -1 {
		t.Errorf("BestNode of no nodes = %d, want -1", got)
	}
}

// TestCheapestShape: a new node VM is of the shape that takes the least of the host among
// those that hold the replica and fit on the host.
func TestCheapestShape(t *testing.T) {
	o := place.Overheads{VM: place.Amount{CPUMilli: 100, MemoryBytes: 64 * mi}, NodeReserved: place.Amount{CPUMilli: 100, MemoryBytes: 256 * mi}}
	shapes := []place.NodeShape{
		place.MakeNodeShape("large", place.Amount{CPUMilli: 4000, MemoryBytes: 4096 * mi}, o),
		place.MakeNodeShape("small", place.Amount{CPUMilli: 1000, MemoryBytes: 512 * mi}, o),
		place.MakeNodeShape("huge", place.Amount{CPUMilli: 64000, MemoryBytes: 65536 * mi}, o),
	}
	host := place.Amount{CPUMilli: 8000, MemoryBytes: 16384 * mi}
	for _, c := range []struct {
		name string
		need place.Amount
		want int
	}{
		{"the small one holds it", place.Amount{CPUMilli: 100, MemoryBytes: 128 * mi}, 1},
		{"too much memory for the small one", place.Amount{CPUMilli: 100, MemoryBytes: 300 * mi}, 0},
		{"too much CPU for the small one", place.Amount{CPUMilli: 1000, MemoryBytes: 1 * mi}, 0},
		{"only the huge one holds it, and it does not fit on the host", place.Amount{CPUMilli: 8000, MemoryBytes: mi}, -1},
	} {
		if got := place.CheapestShape(shapes, host, c.need); got != c.want {
			t.Errorf("%s: CheapestShape(%v) = %d, want %d", c.name, c.need, got, c.want)
		}
	}
}

// TestNodeFitMatchesPlan: replicas placed one at a time with CheapestShape and BestNode,
// as the daemon places them, take as many node VMs of the same shapes as the planner
// packs them into, when the planner has nothing to improve.
func TestNodeFitMatchesPlan(t *testing.T) {
	reserve := v1alpha1.Capacity{CPU: resource.MustParse("100m"), Memory: resource.MustParse("256Mi")}
	f := &v1alpha1.Fleet{Spec: v1alpha1.FleetSpec{
		Hosts: []v1alpha1.Host{{Name: "h1", Capacity: v1alpha1.Capacity{CPU: resource.MustParse("8"), Memory: resource.MustParse("16Gi")}}},
		NodeShapes: []v1alpha1.NodeShape{
			{Name: "small", CPU: resource.MustParse("1"), Memory: resource.MustParse("512Mi")},
			{Name: "large", CPU: resource.MustParse("4"), Memory: resource.MustParse("4Gi")},
		},
		Overheads: v1alpha1.Overheads{NodeReserved: &reserve},
	}}
	f.SetDefaults()
	w := &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: "web"}, Spec: v1alpha1.WorkloadSpec{Image: "web:1"}}
	w.SetDefaults()
	w.Spec.Resources.Memory = resource.MustParse("100Mi")
	three := int32(3)
	w.Spec.Replicas = &three
	res := place.Plan(place.Input{Workloads: []place.Item{{Workload: w, Tier: v1alpha1.TierContainer}}, Fleet: f}, place.Options{})

	shapes := place.FleetNodeShapes(f)
	host := place.Amount{CPUMilli: 8000, MemoryBytes: 16 << 30}
	need := place.ReplicaNeed(v1alpha1.TierContainer, place.Amount{CPUMilli: 100, MemoryBytes: 100 * mi}, place.FleetOverheads(f))
	var nodes []place.NodeRoom
	var names []string
	for range three {
		i := place.BestNode(nodes, need)
		if i < 0 {
			s := place.CheapestShape(shapes, host, need)
			nodes = append(nodes, place.NodeRoom{Alloc: shapes[s].Alloc})
			names = append(names, shapes[s].Name)
			i = len(nodes) - 1
		}
		nodes[i].Used = nodes[i].Used.Add(need)
	}
	var planned []string
	for _, n := range res.Plan.Nodes {
		planned = append(planned, n.Shape)
	}
	if len(planned) != len(names) || len(names) != 2 {
		t.Fatalf("one at a time: node VMs %q; the planner: %q; want two small ones each", names, planned)
	}
	for i := range names {
		if names[i] != planned[i] || names[i] != "small" {
			t.Errorf("one at a time: node VMs %q; the planner: %q; want two small ones each", names, planned)
		}
	}
}

// TestFleetHost: a host is found by its name among spec.hosts and the members of the pools.
func TestFleetHost(t *testing.T) {
	f := &v1alpha1.Fleet{Spec: v1alpha1.FleetSpec{
		Hosts:     []v1alpha1.Host{{Name: "db1", Capacity: v1alpha1.Capacity{CPU: resource.MustParse("32"), Memory: resource.MustParse("128Gi")}}},
		HostPools: []v1alpha1.HostPool{{Prefix: "rack2-n", Count: 8, Capacity: v1alpha1.Capacity{CPU: resource.MustParse("16"), Memory: resource.MustParse("64Gi")}}},
	}}
	for _, c := range []struct {
		name string
		want place.Amount
		ok   bool
	}{
		{"db1", place.Amount{CPUMilli: 32000, MemoryBytes: 128 << 30}, true},
		{"rack2-n7", place.Amount{CPUMilli: 16000, MemoryBytes: 64 << 30}, true},
		{"rack2-n9", place.Amount{}, false},
		{"rack2-n", place.Amount{}, false},
		{"db2", place.Amount{}, false},
	} {
		got, ok := place.FleetHost(f, c.name)
		if got != c.want || ok != c.ok {
			t.Errorf("FleetHost(%q) = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
