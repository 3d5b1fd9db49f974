package nodevm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/place"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
)

// Name is the driver's name.
const Name = "nodevm"

// LabelIsolationClass is the instance label that names its isolation class:
// instances of one class share node VMs, instances of two classes never do.
// An instance without it is of DefaultClass.
const LabelIsolationClass = "strata.dev/isolation-class"

// DefaultClass is the class of instances without LabelIsolationClass.
const DefaultClass = "default"

// LabelClass marks a node VM among the qemu driver's instances with the
// class it carries.
const LabelClass = runtime.LabelDriverPrefix + "nodevm-class"

// Shape sizes a node VM: what its guest is given.
type Shape struct {
	// Name is the shape's name (a Fleet's nodeShapes[].name).
	Name        string
	CPUMilli    int64
	MemoryBytes int64
}

// DefaultShape is the node VM's size when Config names none: one CPU and
// 1 GiB; with DefaultOverheads, 900m CPU and 768 MiB for replicas (six of
// the default 100m and 128Mi).
var DefaultShape = Shape{Name: "default", CPUMilli: 1000, MemoryBytes: 1 << 30}

// Config configures the driver.
type Config struct {
	// QEMU boots the node VMs and holds the images' root disks (it needs an
	// image store, qemu.Config.Images). Required.
	QEMU *qemu.Driver
	// StateDir keeps the instances' records and the node initramfs.
	// Required.
	StateDir string
	// NodeShape sizes each node VM when Shapes is empty (default
	// DefaultShape).
	NodeShape Shape
	// Shapes are the shapes a new node VM may have (a Fleet's nodeShapes for
	// this host): it gets the cheapest that holds the instance it is booted
	// for (place.CheapestShape, ranked by their share of HostCapacity).
	Shapes []Shape
	// HostCapacity is the host's capacity that Shapes are ranked by and must
	// fit into with Overheads.VM (a Fleet's hosts[].capacity); zero: no
	// limit, and the first shape that holds an instance is the cheapest.
	HostCapacity place.Amount
	// Overheads are what each node VM keeps for itself (NodeReserved, not
	// allocatable to instances) and what a sandbox instance costs in it
	// beyond its requests (Sandbox); zero: DefaultOverheads.
	Overheads place.Overheads
	// EmptyGrace is how long a node VM that holds no instance waits for one
	// of its class before it is stopped and removed (default
	// DefaultEmptyGrace).
	EmptyGrace time.Duration
	// Ports is the number of hot-plug ports of a node VM, one per image it
	// runs (0: qemu.NodePorts).
	Ports int
	// Tools are the container runtimes the node VMs carry (default
	// guest.DefaultNodeTools(): crun, and runsc when the host has it);
	// without runsc the driver serves no sandbox tier.
	Tools guest.NodeTools
	// ContainerRuntime runs the container tier in node VMs:
	// guest.RuntimeCrun (when empty) or guest.RuntimeRunc, which needs
	// Tools.Runc. runc is kept for one release, to compare the two
	// (BenchmarkStartTrue); it is not a setting of the daemon's.
	ContainerRuntime string
	// Tiers are the tiers the driver serves: container and sandbox (when
	// Tools has runsc) by default.
	Tiers []v1alpha1.Tier
	// GuestCacheDir is where the node initramfs (strata-guest) and the
	// tools disk (crun, runsc and their libraries) are built once and kept, by the hash of what it
	// holds (default StateDir/guest). Drivers may share one.
	GuestCacheDir string
	// BootTimeout bounds a node VM's boot, from QEMU's start until its
	// guest agent answers (default: the qemu driver's ReadyTimeout, which
	// follows its accelerator).
	BootTimeout time.Duration
	// OpenTap opens the tap the network manager made for instance id
	// (netseg's Manager.OpenTap), for an instance whose spec has VMNet: the
	// driver plugs it into the node VM as the instance's NIC. Nil: the
	// driver gives instances no network (Capabilities.VMNet is false).
	OpenTap func(id string) (*os.File, error)
	Logger  *slog.Logger
}

// Driver runs container-tier (crun) and sandbox-tier (runsc) instances as
// OCI containers inside node VMs, each node VM of one isolation class.
type Driver struct {
	cfg Config
	log *slog.Logger
	// noMounts says why the driver cannot share host directories into
	// node VMs (no virtiofsd, not root); empty when it can.
	noMounts string

	mu       sync.Mutex
	closed   bool
	events   runtime.Broadcaster
	watchers map[string]context.CancelFunc
	stop     chan struct{}
	watched  sync.WaitGroup

	// toolsInInitramfs boots node VMs with all of Config.Tools in their
	// initramfs, as before the tools disk, for tests and benchmarks.
	toolsInInitramfs bool
	// cmdline is added to node VMs' kernel command line, for benchmarks.
	cmdline string
}

// locks serialise work on one instance or one node VM across the Driver
// values of the process.
var locks sync.Map

func lock(key string) func() {
	m, _ := locks.LoadOrStore(key, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// New returns a driver over cfg.StateDir that takes over the instances an
// earlier Driver value left running there.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.QEMU == nil {
		return nil, errors.New("nodevm driver: no qemu driver to boot node VMs with")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("nodevm driver: no state directory")
	}
	if cfg.NodeShape == (Shape{}) {
		cfg.NodeShape = DefaultShape
	}
	if cfg.NodeShape.Name == "" {
		cfg.NodeShape.Name = "default"
	}
	if cfg.Overheads == (place.Overheads{}) {
		cfg.Overheads = DefaultOverheads
	}
	if cfg.EmptyGrace <= 0 {
		cfg.EmptyGrace = DefaultEmptyGrace
	}
	if cfg.Tools == (guest.NodeTools{}) {
		cfg.Tools = guest.DefaultNodeTools()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Tiers) == 0 {
		cfg.Tiers = []v1alpha1.Tier{v1alpha1.TierContainer}
		if cfg.Tools.Runsc != "" {
			cfg.Tiers = append(cfg.Tiers, v1alpha1.TierSandbox)
		}
	}
	rt, err := containerRuntime(cfg)
	if err != nil {
		return nil, err
	}
	cfg.ContainerRuntime = rt
	for _, t := range cfg.Tiers {
		if t != v1alpha1.TierContainer && (t != v1alpha1.TierSandbox || cfg.Tools.Runsc == "") {
			return nil, fmt.Errorf("nodevm driver: tier %q: node VMs run the container tier, and the sandbox tier with runsc", t)
		}
	}
	d := &Driver{
		cfg: cfg, log: cfg.Logger,
		watchers: map[string]context.CancelFunc{}, stop: make(chan struct{}),
		events: runtime.Broadcaster{Name: "nodevm", Log: cfg.Logger},
	}
	switch {
	case os.Geteuid() != 0:
		d.noMounts = "sharing host directories with virtiofs needs root"
	default:
		if _, err := os.Stat(cfg.QEMU.Virtiofsd()); err != nil {
			d.noMounts = fmt.Sprintf("no virtiofsd (%v); install qemu-system-common", err)
		}
	}
	for _, dir := range []string{d.instancesDir(), d.nodesDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("nodevm driver: %w", err)
		}
	}
	ids, err := d.ids()
	if err != nil {
		return nil, fmt.Errorf("nodevm driver: %w", err)
	}
	for _, id := range ids {
		st, err := d.Status(ctx, id)
		if err != nil {
			d.log.Warn("nodevm driver: instance unreadable", "id", id, "err", err)
			continue
		}
		if st.State != runtime.StateExited {
			d.adopt(id)
		}
	}
	d.watched.Add(1)
	go func() {
		defer d.watched.Done()
		d.removeEmpty()
	}()
	return d, nil
}

// containerRuntime is cfg's runtime of the container tier, checked:
// ContainerRuntime, crun when it is empty.
func containerRuntime(cfg Config) (string, error) {
	switch cfg.ContainerRuntime {
	case "", guest.RuntimeCrun:
		return guest.RuntimeCrun, nil
	case guest.RuntimeRunc:
		if cfg.Tools.Runc == "" {
			return "", errors.New("nodevm driver: containerRuntime runc: the tools have no runc (set Tools.Runc)")
		}
		return guest.RuntimeRunc, nil
	}
	return "", fmt.Errorf("nodevm driver: containerRuntime %q: use crun or runc", cfg.ContainerRuntime)
}

// Name implements runtime.Driver.
func (d *Driver) Name() string { return Name }

// Capabilities implements runtime.Driver. The guest's cgroups enforce
// CPUMilli and MemoryBytes for both tiers (a crun container's processes, a
// runsc container's whole sandbox) and the guest reports their OOM kills:
// Limits. An instance's network is a NIC on its tap
// (VMNet) when the driver can open taps; its mounts are shared with
// virtiofs when the host has virtiofsd; no network namespaces on the host.
func (d *Driver) Capabilities() runtime.Capabilities {
	return runtime.Capabilities{Tiers: d.cfg.Tiers, Limits: true, VMNet: d.cfg.OpenTap != nil, Mounts: d.noMounts == ""}
}

// Close implements runtime.Driver: it stops watching; the containers and
// the node VMs run on.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	close(d.stop)
	d.events.Close()
	for _, cancel := range d.watchers {
		cancel()
	}
	d.mu.Unlock()
	d.watched.Wait()
	return nil
}

func (d *Driver) check() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("nodevm driver: closed")
	}
	return nil
}

// Events implements runtime.EventSource: exit events of the instances this
// value watches (those it started or took over), also when another value
// sharing the state directory held the watch when the instance ended.
func (d *Driver) Events(ctx context.Context) (<-chan runtime.Event, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.events.Subscribe(ctx)
}

func (d *Driver) publish(e runtime.Event) { d.events.Publish(e) }

// Class is the isolation class of an instance with labels.
func Class(labels map[string]string) string {
	if c := labels[LabelIsolationClass]; c != "" {
		return c
	}
	return DefaultClass
}

// VMID is the qemu driver's ID of the first node VM of class (VMIDAt).
func VMID(class string) string {
	sum := sha256.Sum256([]byte(class))
	return "nodevm-" + hex.EncodeToString(sum[:6])
}

func (d *Driver) nodesDir() string { return filepath.Join(d.cfg.StateDir, "nodes") }

// initrdPath is where node VM id's initramfs is written for its boot.
func (d *Driver) initrdPath(id string) string { return filepath.Join(d.nodesDir(), id+".initrd") }

// nodeInitrd writes the initramfs of node VM id and returns it with the
// disks the VM boots with: the node initramfs without the runtimes and the
// guest's configuration, and the tools disk (crun, and runsc when the
// driver serves the sandbox tier), both built once and cached in
// GuestCacheDir (default StateDir/guest). The runtimes are on a disk so
// that the guest reads the pages it uses, rather than unpacking them all
// into its memory.
func (d *Driver) nodeInitrd(ctx context.Context, id string) (string, []qemu.Disk, error) {
	k, err := d.cfg.QEMU.GuestKernel()
	if err != nil {
		return "", nil, err
	}
	cache := d.cfg.GuestCacheDir
	if cache == "" {
		cache = filepath.Join(d.cfg.StateDir, "guest")
	}
	tools := d.cfg.Tools
	if !slices.Contains(d.cfg.Tiers, v1alpha1.TierSandbox) {
		tools.Runsc = ""
	}
	cfg := guest.Config{Mode: guest.ModeNode, Hostname: id, ToolsDisk: guest.ToolsDiskSerial}
	var base string
	var disks []qemu.Disk
	if d.toolsInInitramfs {
		cfg.ToolsDisk = ""
		base, err = guest.NodeInitramfs(cache, k, d.cfg.QEMU.GuestInit(), d.cfg.Tools)
	} else {
		var disk string
		if disk, err = guest.NodeToolsDisk(ctx, cache, tools); err != nil {
			return "", nil, err
		}
		disks = []qemu.Disk{{ID: guest.ToolsDiskSerial, Path: disk}}
		base, err = guest.NodeBaseInitramfs(cache, k, d.cfg.QEMU.GuestInit())
	}
	if err != nil {
		return "", nil, err
	}
	data, err := os.ReadFile(base)
	if err != nil {
		return "", nil, err
	}
	extra, err := guest.ConfigArchive(cfg)
	if err != nil {
		return "", nil, err
	}
	p := d.initrdPath(id)
	if err := os.WriteFile(p, append(data, extra...), 0o600); err != nil { //nolint:gosec // G703: id is VMID's, letters and digits
		return "", nil, err
	}
	return p, disks, nil
}

// node runs one node operation in node VM vm; a broken connection to the
// agent is dropped, so that the next operation dials again.
func (d *Driver) node(ctx context.Context, vm string, req guest.NodeRequest) (guest.NodeReply, error) {
	a, err := d.cfg.QEMU.NodeAgent(ctx, vm)
	if err != nil {
		return guest.NodeReply{}, err
	}
	rep, err := a.Node(ctx, req)
	if err != nil && rep.Error == "" && ctx.Err() == nil {
		d.cfg.QEMU.DropNodeAgent(vm, a)
	}
	return rep, err
}

// noContainer reports whether err is the guest's answer that it has no such
// container (it was removed, or the guest booted again).
func noContainer(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no container")
}

// vmGone reports whether err says that the node VM has ended or is no more.
func vmGone(err error) bool {
	return errors.Is(err, runtime.ErrNotRunning) || errors.Is(err, runtime.ErrNotFound)
}

// publishExit reports the end of an instance: its OOM kill first when it
// had one, then its exit.
func (d *Driver) publishExit(st runtime.Status) {
	if st.OOMKilled {
		d.publish(runtime.Event{Type: runtime.EventOOM, ID: st.ID, Time: st.FinishedAt})
	}
	d.publish(runtime.Event{Type: runtime.EventExit, ID: st.ID, ExitCode: st.ExitCode, OOMKilled: st.OOMKilled, Time: st.FinishedAt})
}
