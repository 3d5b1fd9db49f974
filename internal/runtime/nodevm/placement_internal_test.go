package nodevm

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/place"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
)

const mib = 1 << 20

// testOverheads keep 100m and 256 MiB of each node VM.
var testOverheads = place.Overheads{
	VM:           place.Amount{CPUMilli: 100, MemoryBytes: 256 * mib},
	Sandbox:      place.Amount{CPUMilli: 50, MemoryBytes: 64 * mib},
	NodeReserved: place.Amount{CPUMilli: 100, MemoryBytes: 256 * mib},
}

func allocOf(s Shape) place.Amount {
	return place.MakeNodeShape(s.Name, s.amount(), testOverheads).Alloc
}

// TestChoose: an instance joins the running node VM of its class it fills
// best, never one without room or, when its image is not plugged in yet,
// without a free port; none when it fits none.
func TestChoose(t *testing.T) {
	small := Shape{Name: "small", CPUMilli: 1000, MemoryBytes: 512 * mib} // 900m, 256 MiB for instances
	need := place.Amount{CPUMilli: 100, MemoryBytes: 100 * mib}
	for _, c := range []struct {
		name string
		vms  []nodeVM
		nics int
		want int
	}{
		{"none runs", nil, 0, -1},
		{"an empty one", []nodeVM{{id: "a", shape: small, freePorts: 4}}, 0, 0},
		{"two fit: the fuller", []nodeVM{
			{id: "a", shape: small, freePorts: 4, used: place.Amount{CPUMilli: 100, MemoryBytes: 50 * mib}},
			{id: "b", shape: small, freePorts: 4, used: place.Amount{CPUMilli: 100, MemoryBytes: 150 * mib}},
		}, 0, 1},
		{"the first is full", []nodeVM{
			{id: "a", shape: small, freePorts: 4, used: place.Amount{CPUMilli: 200, MemoryBytes: 200 * mib}},
			{id: "b", shape: small, freePorts: 4},
		}, 0, 1},
		{"all are full", []nodeVM{
			{id: "a", shape: small, freePorts: 4, used: place.Amount{CPUMilli: 200, MemoryBytes: 200 * mib}},
			{id: "b", shape: small, freePorts: 4, used: place.Amount{CPUMilli: 850, MemoryBytes: 0}},
		}, 0, -1},
		{"no free port for the image", []nodeVM{{id: "a", shape: small, freePorts: 0}}, 0, -1},
		{"no free port, but the image is there", []nodeVM{{id: "a", shape: small, freePorts: 0, hasImage: true}}, 0, 0},
		{"a port for the NIC, the image is there", []nodeVM{{id: "a", shape: small, freePorts: 1, hasImage: true}}, 1, 0},
		{"no port for the NIC", []nodeVM{{id: "a", shape: small, freePorts: 0, hasImage: true}}, 1, -1},
		{"a port for the image but not also the NIC", []nodeVM{
			{id: "a", shape: small, freePorts: 1},
			{id: "b", shape: small, freePorts: 2},
		}, 1, 1},
	} {
		if got := choose(c.vms, need, c.nics, false, allocOf); got != c.want {
			t.Errorf("%s: choose = %d, want %d", c.name, got, c.want)
		}
	}
	// An instance with mounts needs a port for the share of its mounts too,
	// unless the node VM has that share already.
	for _, c := range []struct {
		name string
		vms  []nodeVM
		want int
	}{
		{"a port for the share", []nodeVM{{id: "a", shape: small, freePorts: 1, hasImage: true}}, 0},
		{"no port for the share", []nodeVM{{id: "a", shape: small, freePorts: 0, hasImage: true}}, -1},
		{"the share is there", []nodeVM{{id: "a", shape: small, freePorts: 0, hasImage: true, hasShare: true}}, 0},
		{"ports for the image but not also the share", []nodeVM{
			{id: "a", shape: small, freePorts: 1},
			{id: "b", shape: small, freePorts: 2},
		}, 1},
	} {
		if got := choose(c.vms, need, 0, true, allocOf); got != c.want {
			t.Errorf("with mounts: %s: choose = %d, want %d", c.name, got, c.want)
		}
	}
}

// TestNewIndex: a new node VM of a class takes the lowest index none of the
// running ones has, and the IDs order by index.
func TestNewIndex(t *testing.T) {
	const class = "acme/internal/internal"
	vms := func(idx ...int) []nodeVM {
		var out []nodeVM
		for _, i := range idx {
			out = append(out, nodeVM{id: VMIDAt(class, i)})
		}
		return out
	}
	for _, c := range []struct {
		running []int
		want    int
	}{{nil, 0}, {[]int{0}, 1}, {[]int{0, 1}, 2}, {[]int{1}, 0}, {[]int{0, 2}, 1}} {
		if got := newIndex(class, vms(c.running...)); got != c.want {
			t.Errorf("running %v: new index %d, want %d", c.running, got, c.want)
		}
	}
	if VMIDAt(class, 0) != VMID(class) || VMIDAt(class, 3) != VMID(class)+"-3" || VMIDAt("other", 1) == VMIDAt(class, 1) {
		t.Errorf("IDs: %s %s %s %s", VMID(class), VMIDAt(class, 0), VMIDAt(class, 3), VMIDAt("other", 1))
	}
	ids := []string{VMIDAt(class, 10), VMIDAt(class, 2), VMIDAt(class, 0), VMIDAt(class, 1)}
	slices.SortFunc(ids, compareIDs)
	if want := []string{VMIDAt(class, 0), VMIDAt(class, 1), VMIDAt(class, 2), VMIDAt(class, 10)}; !slices.Equal(ids, want) {
		t.Errorf("sorted %v, want %v", ids, want)
	}
}

// TestNewShape: a new node VM gets the cheapest shape that holds the
// instance; an instance that no shape holds is invalid, and the error names
// its request and the shape.
func TestNewShape(t *testing.T) {
	d := &Driver{cfg: Config{
		Shapes: []Shape{
			{Name: "large", CPUMilli: 4000, MemoryBytes: 2048 * mib},
			{Name: "small", CPUMilli: 1000, MemoryBytes: 512 * mib},
		},
		HostCapacity: place.Amount{CPUMilli: 8000, MemoryBytes: 16384 * mib}, Overheads: testOverheads,
	}}
	spec := func(tier v1alpha1.Tier, cpu, mem int64) runtime.InstanceSpec {
		return runtime.InstanceSpec{ID: "web-0", Tier: tier, CPUMilli: cpu, MemoryBytes: mem}
	}
	for _, c := range []struct {
		name string
		spec runtime.InstanceSpec
		want string
	}{
		{"fits the small one", spec(v1alpha1.TierContainer, 100, 256*mib), "small"},
		{"the sandbox overhead makes it too large for the small one", spec(v1alpha1.TierSandbox, 100, 256*mib), "large"},
		{"too much CPU for the small one", spec(v1alpha1.TierContainer, 2000, mib), "large"},
	} {
		s, err := d.newShape(c.spec)
		if err != nil || s.Name != c.want {
			t.Errorf("%s: shape %+v, %v; want %s", c.name, s, err, c.want)
		}
	}
	_, err := d.newShape(spec(v1alpha1.TierContainer, 100, 3*1024*mib))
	if !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("an instance larger than every shape: %v, want ErrInvalid", err)
	}
	for _, want := range []string{`instance "web-0"`, "requests 0.1 CPU, 3Gi", "large (4 CPU, 2Gi)", "3.9 CPU, 1.75Gi", "the 0.1 CPU, 256Mi each node VM keeps", "request less"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	one := &Driver{cfg: Config{NodeShape: Shape{Name: "default", CPUMilli: 1000, MemoryBytes: 512 * mib}, Overheads: testOverheads}}
	if s, err := one.newShape(spec(v1alpha1.TierContainer, 900, 256*mib)); err != nil || s.Name != "default" {
		t.Errorf("an instance that fills the default shape exactly: %+v, %v", s, err)
	}
	if _, err := one.newShape(spec(v1alpha1.TierSandbox, 900, 256*mib)); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "with the sandbox overhead") {
		t.Errorf("a sandbox that the overhead makes too large: %v", err)
	}
}

// TestDueEmpty: a node VM is due for removal once it has been empty for the
// whole grace; one that holds an instance again starts over.
func TestDueEmpty(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	const grace = 10 * time.Second
	since := map[string]time.Time{}
	step := func(at time.Duration, empty map[string]bool, want ...string) {
		t.Helper()
		if got := dueEmpty(since, empty, t0.Add(at), grace); !slices.Equal(got, want) {
			t.Errorf("at %v, empty %v: due %v, want %v", at, empty, got, want)
		}
	}
	step(0, map[string]bool{"a": true, "b": false})
	step(5*time.Second, map[string]bool{"a": true, "b": true})
	step(9*time.Second, map[string]bool{"a": false, "b": true}) // a got an instance
	step(10*time.Second, map[string]bool{"a": true, "b": true})
	step(15*time.Second, map[string]bool{"a": true, "b": true}, "b")
	step(20*time.Second, map[string]bool{"a": true}, "a") // b is gone
	if _, ok := since["b"]; ok {
		t.Error("a node VM that is gone is still remembered")
	}
}

// TestIsNodeVM: a driver takes as its own the node VMs booted over its state directory,
// and those booted before node VMs named theirs; not another driver's, nor a VM that
// is no node VM.
func TestIsNodeVM(t *testing.T) {
	d := &Driver{cfg: Config{StateDir: "/var/lib/strata/nodevm"}}
	other := &Driver{cfg: Config{StateDir: "/srv/strata/nodevm"}}
	st := func(labels map[string]string) runtime.Status { return runtime.Status{ID: "nodevm-1", Labels: labels} }
	node := map[string]string{qemu.LabelNodeVM: "true", LabelClass: "acme/internal/internal"}
	with := func(k, v string) map[string]string {
		m := maps.Clone(node)
		m[k] = v
		return m
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"its own", with(LabelOwner, d.owner()), true},
		{"booted before owners", node, true},
		{"another driver's", with(LabelOwner, other.owner()), false},
		{"no node VM", map[string]string{LabelClass: "acme/internal/internal"}, false},
		{"no class", map[string]string{qemu.LabelNodeVM: "true"}, false},
	} {
		class, ok := d.isNodeVM(st(c.labels))
		if ok != c.want || ok && class != "acme/internal/internal" {
			t.Errorf("%s: %q, %v; want %v", c.name, class, ok, c.want)
		}
	}
}

// TestReservedPorts: starts under way take a port for each device they have
// not plugged in yet (two starts of one image need its disk once), so that
// concurrent starts of different images cannot both count on a node VM's
// last port; their room is taken until they release it.
func TestReservedPorts(t *testing.T) {
	d := &Driver{cfg: Config{StateDir: t.TempDir()}}
	need := place.Amount{CPUMilli: 100, MemoryBytes: 64 * mib}
	releaseA := d.reserve("vm", "a", need, []string{"disk-1", NICID("a")})
	releaseB := d.reserve("vm", "b", need, []string{"disk-1", NICID("b")})
	releaseC := d.reserve("vm", "c", need, []string{"disk-2"})
	sum, ids, devices := d.reserved("vm")
	slices.Sort(ids)
	if sum != need.Add(need).Add(need) || !slices.Equal(ids, []string{"a", "b", "c"}) || len(devices) != 4 {
		t.Errorf("reserved = %v, %v, %v; want 3 x %v, [a b c] and 4 devices (disk-1 once)", sum, ids, devices, need)
	}
	if n := pendingPorts(devices, nil); n != 4 {
		t.Errorf("with nothing plugged in: %d pending ports, want 4", n)
	}
	// a's start has plugged in the shared disk and its NIC.
	if n := pendingPorts(devices, []qemu.NodeDevice{{ID: "disk-1"}, {ID: NICID("a")}}); n != 2 {
		t.Errorf("with disk-1 and a's NIC plugged in: %d pending ports, want 2 (b's NIC, disk-2)", n)
	}
	releaseA()
	releaseB()
	releaseC()
	if sum, ids, devices := d.reserved("vm"); sum != (place.Amount{}) || len(ids) != 0 || len(devices) != 0 {
		t.Errorf("after release: %v, %v, %v; want nothing", sum, ids, devices)
	}
}
