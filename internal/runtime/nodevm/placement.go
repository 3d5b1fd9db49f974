package nodevm

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"strata.dev/strata/internal/place"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
)

// Labels a node VM carries among the qemu driver's instances, besides
// LabelClass: the name and size of its shape.
const (
	LabelShape       = runtime.LabelDriverPrefix + "nodevm-shape"
	LabelShapeCPU    = runtime.LabelDriverPrefix + "nodevm-cpu-milli"
	LabelShapeMemory = runtime.LabelDriverPrefix + "nodevm-memory-bytes"
	// LabelOwner names the state directory of the driver that booted the
	// node VM (a hash of it): a driver places into, lists and removes only
	// its own node VMs, also when another one shares its qemu driver.
	LabelOwner = runtime.LabelDriverPrefix + "nodevm-owner"
)

// DefaultOverheads are the node VMs' overheads when Config names none: each
// keeps 100m CPU and 256 MiB for its own kernel, agent and runtimes (a node
// VM with one serving container uses about that beyond it), a sandbox
// replica costs the Fleet's default sandbox overhead, and the VM overhead is
// the Fleet's default.
var DefaultOverheads = place.Overheads{
	VM:           place.FleetOverheads(nil).VM,
	Sandbox:      place.FleetOverheads(nil).Sandbox,
	NodeReserved: place.Amount{CPUMilli: 100, MemoryBytes: 256 << 20},
}

// DefaultEmptyGrace is how long an empty node VM waits for a replica of its
// class before it is stopped and removed, when Config names no grace.
const DefaultEmptyGrace = 5 * time.Minute

// VMIDAt is the qemu driver's ID of node VM number index of class: VMID(class)
// for the first (index 0), VMID(class) and "-index" for the others.
func VMIDAt(class string, index int) string {
	if index == 0 {
		return VMID(class)
	}
	return VMID(class) + "-" + strconv.Itoa(index)
}

// nodeVM is one node VM of a class as placement sees it.
type nodeVM struct {
	id    string
	shape Shape
	// used is what the replicas it holds take of it (their requests, the
	// sandbox overhead for sandboxes), those being started included.
	used place.Amount
	// freePorts are its hot-plug ports that no device holds; hasImage is
	// whether it holds the image's disk already, hasShare whether it holds
	// the share of its instances' mounts (shareID).
	freePorts int
	hasImage  bool
	hasShare  bool
}

// amount is s's size as placement counts it.
func (s Shape) amount() place.Amount {
	return place.Amount{CPUMilli: s.CPUMilli, MemoryBytes: s.MemoryBytes}
}

// String writes s as "small (1 CPU, 512Mi)".
func (s Shape) String() string { return s.Name + " (" + s.amount().String() + ")" }

// shapes are the shapes a new node VM may have: Config.Shapes, else
// Config.NodeShape.
func (d *Driver) shapes() []Shape {
	if len(d.cfg.Shapes) > 0 {
		return d.cfg.Shapes
	}
	return []Shape{d.cfg.NodeShape}
}

// placeShapes are d's shapes worked out with its overheads.
func (d *Driver) placeShapes() []place.NodeShape {
	out := make([]place.NodeShape, 0, len(d.shapes()))
	for _, s := range d.shapes() {
		out = append(out, place.MakeNodeShape(s.Name, s.amount(), d.cfg.Overheads))
	}
	return out
}

// hostCapacity is what the shapes are ranked by and must fit into: the
// configured capacity, or no limit.
func (d *Driver) hostCapacity() place.Amount {
	if c := d.cfg.HostCapacity; c.CPUMilli > 0 && c.MemoryBytes > 0 {
		return c
	}
	const unlimited = int64(1) << 50
	return place.Amount{CPUMilli: unlimited, MemoryBytes: unlimited}
}

// need is what the instance of spec takes of its node VM.
func (d *Driver) need(spec runtime.InstanceSpec) place.Amount {
	return place.ReplicaNeed(spec.Tier, place.Amount{CPUMilli: spec.CPUMilli, MemoryBytes: spec.MemoryBytes}, d.cfg.Overheads)
}

// newShape is the shape of a new node VM for an instance of spec: the
// cheapest of the driver's shapes that holds it (place.CheapestShape). An
// instance that no shape holds is invalid: it could never run.
func (d *Driver) newShape(spec runtime.InstanceSpec) (Shape, error) {
	need := d.need(spec)
	shapes := d.placeShapes()
	if i := place.CheapestShape(shapes, d.hostCapacity(), need); i >= 0 {
		return d.shapes()[i], nil
	}
	what := fmt.Sprintf("requests %s", place.Amount{CPUMilli: spec.CPUMilli, MemoryBytes: spec.MemoryBytes})
	if need != (place.Amount{CPUMilli: spec.CPUMilli, MemoryBytes: spec.MemoryBytes}) {
		what += fmt.Sprintf(" (%s with the sandbox overhead)", need)
	}
	largest := 0
	for i, s := range shapes {
		if s.Alloc.CPUMilli+s.Alloc.MemoryBytes > shapes[largest].Alloc.CPUMilli+shapes[largest].Alloc.MemoryBytes {
			largest = i
		}
	}
	s := shapes[largest]
	room := "nothing"
	if s.Alloc.CPUMilli > 0 {
		room = s.Alloc.String()
	}
	why := fmt.Sprintf("more than a node VM of shape %s holds: %s, after the %s each node VM keeps for itself",
		d.shapes()[largest], room, d.cfg.Overheads.NodeReserved)
	if need.Fits(s.Alloc) {
		why = fmt.Sprintf("and no node shape that holds it fits on this host (%s)", d.cfg.HostCapacity)
	}
	return Shape{}, fmt.Errorf("%w: instance %q %s, %s; request less (spec.resources), or give the daemon a Fleet with a larger node shape",
		runtime.ErrInvalid, spec.ID, what, why)
}

// choose is the node VM of vms an instance needing need and nics NICs of
// its own joins, one with free ports for those NICs and, when it has not
// its image's disk yet, for that disk, and for the share of its mounts when
// it has mounts (share) and the VM no share yet: of those it fits, the one
// it fills best (place.BestNode); -1 when it fits none.
func choose(vms []nodeVM, need place.Amount, nics int, share bool, alloc func(Shape) place.Amount) int {
	var rooms []place.NodeRoom
	var at []int
	for i, v := range vms {
		ports := nics
		if !v.hasImage {
			ports++
		}
		if share && !v.hasShare {
			ports++
		}
		if v.freePorts < ports {
			continue
		}
		rooms = append(rooms, place.NodeRoom{Alloc: alloc(v.shape), Used: v.used})
		at = append(at, i)
	}
	if i := place.BestNode(rooms, need); i >= 0 {
		return at[i]
	}
	return -1
}

// newIndex is the lowest index of a node VM of class that none of vms has.
func newIndex(class string, vms []nodeVM) int {
	for i := 0; ; i++ {
		if !slices.ContainsFunc(vms, func(v nodeVM) bool { return v.id == VMIDAt(class, i) }) {
			return i
		}
	}
}

// reservations are the instances being started, by node VM (under the
// driver's state directory): their room and the hot-plug ports of their
// devices are taken before their records and devices exist, so that
// concurrent starts do not overfill a node VM or plug more devices than it
// has ports, and an empty one that a start has chosen is not removed.
var reservations = struct {
	sync.Mutex
	m map[string]map[string]reservation
}{m: map[string]map[string]reservation{}}

// reservation is what one instance being started takes of its node VM.
type reservation struct {
	need place.Amount
	// devices are the IDs of the devices the start plugs in (its image's
	// disk, its NIC), each of which takes a port until it is there.
	devices []string
}

func (d *Driver) reserveKey(vm string) string { return d.cfg.StateDir + "/" + vm }

// reserve takes need and a port for each of devices in node VM vm for
// instance id until the returned function is called.
func (d *Driver) reserve(vm, id string, need place.Amount, devices []string) func() {
	k := d.reserveKey(vm)
	reservations.Lock()
	if reservations.m[k] == nil {
		reservations.m[k] = map[string]reservation{}
	}
	reservations.m[k][id] = reservation{need: need, devices: devices}
	reservations.Unlock()
	return func() {
		reservations.Lock()
		delete(reservations.m[k], id)
		if len(reservations.m[k]) == 0 {
			delete(reservations.m, k)
		}
		reservations.Unlock()
	}
}

// reserved is what the instances being started in node VM vm take, which
// they are, and the devices they plug in (each once, sorted).
func (d *Driver) reserved(vm string) (place.Amount, []string, []string) {
	reservations.Lock()
	defer reservations.Unlock()
	var sum place.Amount
	var ids, devices []string
	for id, r := range reservations.m[d.reserveKey(vm)] {
		sum = sum.Add(r.need)
		ids = append(ids, id)
		devices = append(devices, r.devices...)
	}
	slices.Sort(devices)
	return sum, ids, slices.Compact(devices)
}

// pendingPorts is how many of the devices that starts will plug in are not
// among devs yet: the ports they are about to take.
func pendingPorts(devices []string, devs []qemu.NodeDevice) int {
	n := 0
	for _, id := range devices {
		if !slices.ContainsFunc(devs, func(d qemu.NodeDevice) bool { return d.ID == id }) {
			n++
		}
	}
	return n
}

// shapeOf is the shape node VM st was booted with, from its labels; the
// driver's NodeShape for one booted before they were kept.
func (d *Driver) shapeOf(st runtime.Status) Shape {
	cpu, err1 := strconv.ParseInt(st.Labels[LabelShapeCPU], 10, 64)
	mem, err2 := strconv.ParseInt(st.Labels[LabelShapeMemory], 10, 64)
	if err1 != nil || err2 != nil {
		return d.cfg.NodeShape
	}
	return Shape{Name: st.Labels[LabelShape], CPUMilli: cpu, MemoryBytes: mem}
}

// shapeLabels are the labels that record shape s on its node VM.
func shapeLabels(s Shape) map[string]string {
	return map[string]string{
		LabelShape: s.Name, LabelShapeCPU: strconv.FormatInt(s.CPUMilli, 10), LabelShapeMemory: strconv.FormatInt(s.MemoryBytes, 10),
	}
}

// isNodeVM reports whether st is one of the qemu driver's node VMs that a
// driver over this state directory booted (or one booted before node VMs
// recorded it), and of which class.
func (d *Driver) isNodeVM(st runtime.Status) (string, bool) {
	class, ok := st.Labels[LabelClass]
	owner, owned := st.Labels[LabelOwner]
	return class, ok && st.Labels[qemu.LabelNodeVM] == "true" && (!owned || owner == d.owner())
}

// owner is what LabelOwner holds on the node VMs of this driver's state
// directory.
func (d *Driver) owner() string {
	sum := sha256.Sum256([]byte(filepath.Clean(d.cfg.StateDir)))
	return hex.EncodeToString(sum[:6])
}

// classVMs lists the running node VMs of class with what they hold (the
// instances recorded in them since they booted and those being started),
// and, with the ID of the image's disk, whether they hold it and their free
// ports.
func (d *Driver) classVMs(ctx context.Context, class, diskID string) ([]nodeVM, error) {
	list, err := d.cfg.QEMU.List(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := d.records()
	if err != nil {
		return nil, err
	}
	ports := d.cfg.Ports
	if ports == 0 {
		ports = qemu.NodePorts
	}
	var out []nodeVM
	for _, st := range list {
		if c, ok := d.isNodeVM(st); !ok || c != class || st.State != runtime.StateRunning {
			continue
		}
		v := nodeVM{id: st.ID, shape: d.shapeOf(st)}
		for _, r := range recs {
			if r.VM == st.ID && !r.Finished && !r.StartedAt.Before(st.StartedAt) {
				v.used = v.used.Add(place.ReplicaNeed(r.Tier, place.Amount{CPUMilli: r.CPUMilli, MemoryBytes: r.MemoryBytes}, d.cfg.Overheads))
			}
		}
		pending, _, plugging := d.reserved(st.ID)
		v.used = v.used.Add(pending)
		devs, err := d.cfg.QEMU.NodeDevices(st.ID)
		if err != nil {
			continue // removed meanwhile
		}
		v.freePorts = ports - len(devs) - pendingPorts(plugging, devs)
		v.hasImage = slices.ContainsFunc(devs, func(n qemu.NodeDevice) bool { return n.ID == diskID })
		v.hasShare = slices.ContainsFunc(devs, func(n qemu.NodeDevice) bool { return n.ID == shareID })
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b nodeVM) int { return compareIDs(a.id, b.id) })
	return out, nil
}

// compareIDs orders node VM IDs by index: the first, then -1, -2, ... -10.
func compareIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return cmp.Compare(a, b)
}

// placeInstance chooses the node VM for the instance of spec of class, whose
// image's disk is diskID, and takes its room there until the returned
// function is called: a running node VM of the class it fits (the one it
// fills best), else a new one of the cheapest shape that holds it, booted
// here. It returns once the node VM's guest agent answers.
func (d *Driver) placeInstance(ctx context.Context, spec runtime.InstanceSpec, class, diskID string) (string, func(), error) {
	shape, err := d.newShape(spec)
	if err != nil {
		return "", nil, err
	}
	need := d.need(spec)
	unlock := lock("class/" + d.cfg.StateDir + "/" + class)
	defer unlock()
	vms, err := d.classVMs(ctx, class, diskID)
	if err != nil {
		return "", nil, err
	}
	nics, devices := 0, []string{diskID}
	if spec.VMNet != nil {
		nics = 1 // its own NIC, plugged in by Start
		devices = append(devices, NICID(spec.ID))
	}
	if len(spec.Mounts) > 0 {
		devices = append(devices, shareID) // the node VM's share, plugged in by the first start with mounts
	}
	vm := ""
	if i := choose(vms, need, nics, len(spec.Mounts) > 0, func(s Shape) place.Amount {
		return place.MakeNodeShape(s.Name, s.amount(), d.cfg.Overheads).Alloc
	}); i >= 0 {
		vm = vms[i].id
	} else {
		vm = VMIDAt(class, newIndex(class, vms))
		d.log.Info("nodevm driver: new node VM", "vm", vm, "class", class, "shape", shape.Name, "for", spec.ID, "running", len(vms))
	}
	release := d.reserve(vm, spec.ID, need, devices)
	if err := d.ensureVM(ctx, class, vm, shape); err != nil {
		release()
		return "", nil, err
	}
	return vm, release, nil
}
