package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/netseg/netstate"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/store"
)

// Labels the controller puts on every instance (drivers record the workload and slot
// themselves).
const (
	LabelSpecHash = "control.strata.dev/spec-hash"
	LabelSegment  = "control.strata.dev/segment"
)

// Network attaches instances to their segment. Attach is idempotent; vm asks for a VM's
// attachment (a tap) rather than a network namespace.
type Network interface {
	Attach(ctx context.Context, segment, instanceID string, vm bool) (netstate.Attachment, error)
	Detach(ctx context.Context, segment, instanceID string) error
}

// Recorder records events.
type Recorder interface {
	Record(ctx context.Context, e objects.Event)
}

// Options configure the workload controller.
type Options struct {
	Store   *store.Store
	Drivers *runtime.Registry
	Network Network  // nil: instances get an empty network namespace
	Events  Recorder // nil: events are only logged
	Logger  *slog.Logger
	Clock   func() time.Time
	// DataDir holds instance logs (logs/ID.log), volumes (volumes/WORKLOAD/VOLUME/SLOT)
	// and the disks of disk VMs (disks/WORKLOAD/SLOT).
	DataDir string
	// Resync is how often every workload is reconciled even without a change (default 2s):
	// it is how exits are noticed when a driver has no event stream.
	Resync time.Duration
	// RestartBackoff is the first delay before restarting an exited instance; it doubles with
	// each restart of the slot up to MaxRestartBackoff (defaults 1s and 5m).
	RestartBackoff, MaxRestartBackoff time.Duration
	// StopGrace is how long an instance may take to end after SIGTERM (default 10s).
	StopGrace time.Duration
	// MaxLogBytes is the size past which an instance's log is rotated, keeping LogFiles old
	// files (defaults DefaultMaxLogBytes and DefaultLogFiles).
	MaxLogBytes int64
	LogFiles    int
	// ObserveReconcile, when set, is told how long each reconcile of a workload took
	// (by Clock), failed ones included; the daemon feeds it to its metrics.
	ObserveReconcile func(d time.Duration)
	// ObserveProbeFailure, when set, is told of every failed health probe of an
	// instance (not only those that lead to a restart).
	ObserveProbeFailure func(workload, instance string)
	// Startups, when set, records how long each started instance took to serve (see
	// StartupTimes); ObserveStartup, when set, is told the same.
	Startups       *StartupTimes
	ObserveStartup func(tier v1alpha1.Tier, d time.Duration)
}

// Controller reconciles Workloads.
type Controller struct {
	o     Options
	log   *slog.Logger
	queue *queue
	// retry holds the backoffs of failed reconciles and starts.
	retry *retries
	// health holds each running instance's health-check state, by instance ID.
	health map[string]*probeState
	// listing caches the drivers' instances by workload (see listAll).
	listing  map[string][]observed
	listedAt time.Time
}

// New returns a workload controller.
func New(o Options) *Controller {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Resync <= 0 {
		o.Resync = 2 * time.Second
	}
	if o.RestartBackoff <= 0 {
		o.RestartBackoff = time.Second
	}
	if o.MaxRestartBackoff <= 0 {
		o.MaxRestartBackoff = 5 * time.Minute
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 10 * time.Second
	}
	if o.MaxLogBytes <= 0 {
		o.MaxLogBytes = DefaultMaxLogBytes
	}
	if o.LogFiles <= 0 {
		o.LogFiles = DefaultLogFiles
	}
	return &Controller{o: o, log: o.Logger, queue: newQueue(), retry: newRetries(), health: map[string]*probeState{}}
}

// QueueDepth returns how many workloads are scheduled for a reconcile, now or after a
// backoff or requeue delay. It is safe to call while Run runs.
func (c *Controller) QueueDepth() int { return c.queue.len() }

// Run reconciles until ctx ends: every workload at start and on every resync, and each
// workload when the store says it changed.
func (c *Controller) Run(ctx context.Context) error {
	watch, err := c.o.Store.Watch(ctx, v1alpha1.KindWorkload, c.o.Store.Revision())
	if err != nil {
		return fmt.Errorf("watch workloads: %w", err)
	}
	c.enqueueAll(ctx)
	resync := time.NewTicker(c.o.Resync)
	defer resync.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		name, wait := c.queue.next(c.o.Clock())
		if name != "" {
			// A reconcile under way finishes even when the daemon is stopping: stopping
			// halfway through removing an instance would leave pieces of it behind.
			opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*c.o.StopGrace)
			c.reconcileAndRequeue(opCtx, name)
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		if wait <= 0 {
			wait = time.Hour
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-watch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				// The watch fell behind: start a new one and look at everything.
				if watch, err = c.o.Store.Watch(ctx, v1alpha1.KindWorkload, c.o.Store.Revision()); err != nil {
					return fmt.Errorf("watch workloads: %w", err)
				}
				c.enqueueAll(ctx)
				continue
			}
			if ev.Type != store.Error {
				// A change by the user acts at once; a status write waits out a backoff.
				now := c.o.Clock()
				if !c.retry.changed(ev) {
					now = c.retry.due(ev.Object.Name, now)
				}
				c.queue.add(ev.Object.Name, now)
			}
		case <-resync.C:
			c.enqueueAll(ctx)
		case <-c.queue.wake:
		case <-timer.C:
		}
	}
}

// enqueueAll schedules every stored workload and every workload that still has instances,
// each at the end of its backoff when its last reconcile failed.
func (c *Controller) enqueueAll(ctx context.Context) {
	now := c.o.Clock()
	recs, _, err := c.o.Store.List(ctx, v1alpha1.KindWorkload)
	if err != nil {
		c.log.Error("list workloads", "err", err)
	}
	for _, r := range recs {
		c.queue.add(r.Name, c.retry.due(r.Name, now))
	}
	c.changed() // a resync looks at the drivers afresh
	all, err := c.listAll(ctx)
	if err != nil {
		c.log.Error("list instances", "err", err)
		return
	}
	for name := range all {
		if name != "" {
			c.queue.add(name, c.retry.due(name, now))
		}
	}
}

func (c *Controller) reconcileAndRequeue(ctx context.Context, name string) {
	began := c.o.Clock()
	after, err := c.Reconcile(ctx, name)
	if c.o.ObserveReconcile != nil {
		c.o.ObserveReconcile(c.o.Clock().Sub(began))
	}
	if err != nil {
		now := c.o.Clock()
		at := c.retry.failed(name, now, c.o.RestartBackoff, c.o.MaxRestartBackoff)
		c.log.Warn("reconcile failed", "workload", name, "err", err, "retryIn", at.Sub(now))
		if after > 0 && now.Add(after).Before(at) {
			at = now.Add(after) // a slot's own timer (a health check, a restart) comes first
		}
		c.queue.add(name, at)
		return
	}
	c.retry.succeeded(name)
	if after > 0 {
		c.queue.add(name, c.o.Clock().Add(after))
	}
}

// backoff is base * 2^n, at most max.
func backoff(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// observed is one instance as a driver reports it.
type observed struct {
	driver runtime.Driver
	status runtime.Status
}

// instancesOf lists the instances of workload name on every driver, by ID.
func (c *Controller) instancesOf(ctx context.Context, name string) (map[string]observed, error) {
	all, err := c.listAll(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]observed{}
	for _, ob := range all[name] {
		out[ob.status.ID] = ob
	}
	return out, nil
}

// listAll lists every driver's instances, grouped by workload. One listing serves every
// workload reconciled within half a resync period, so a pass over N workloads lists each
// driver about once, not N times; anything this controller starts, stops or removes
// invalidates it, so a workload always sees its own changes.
func (c *Controller) listAll(ctx context.Context) (map[string][]observed, error) {
	now := c.o.Clock()
	if c.listing != nil && now.Sub(c.listedAt) < c.o.Resync/2 {
		return c.listing, nil
	}
	all := map[string][]observed{}
	for _, d := range c.o.Drivers.Drivers() {
		insts, err := d.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("list instances of driver %s: %w", d.Name(), err)
		}
		for _, in := range insts {
			all[in.Workload] = append(all[in.Workload], observed{driver: d, status: in})
		}
	}
	c.listing, c.listedAt = all, now
	return all, nil
}

// changed forgets the cached listing after this controller changed an instance.
func (c *Controller) changed() { c.listing = nil }

// InstanceID names a replica slot.
func InstanceID(workload string, slot int) string { return workload + "-" + strconv.Itoa(slot) }

// specHash identifies what an instance was started from; a different hash means the instance
// must be replaced.
func specHash(w *v1alpha1.Workload, tier v1alpha1.Tier) string {
	b, _ := json.Marshal(struct {
		Tier      v1alpha1.Tier
		Image     string
		Command   []string
		Env       map[string]string
		Resources v1alpha1.Resources
		Volumes   []v1alpha1.Volume
		Segment   string
		VM        *v1alpha1.VMSource `json:",omitempty"` // absent (not null) without one: the hashes of earlier instances stay valid
		Caps      []string           `json:",omitempty"` // likewise
		NodeVM    string             `json:",omitempty"` // the class of node VMs it runs in; likewise
	}{tier, w.Spec.Image, w.Spec.Command, w.Spec.Env, w.Spec.Resources, w.Spec.Volumes, w.Spec.Segment, w.Spec.VM, grantedCapabilities(w, tier), nodeVMClass(w)})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// nodeVMClass is the class of node VMs w's replicas run in, "" on the host's kernel: a
// replica that moves into or out of node VMs, or into another class's, starts again.
func nodeVMClass(w *v1alpha1.Workload) string {
	if wr := whereRuns(w); wr.NodeVM {
		return wr.Class
	}
	return ""
}

// grantedCapabilities are the capabilities an instance of w at tier is given beyond the
// default set: those its traits ask for, in a container or a sandbox; a VM's guest has a
// kernel of its own.
func grantedCapabilities(w *v1alpha1.Workload, tier v1alpha1.Tier) []string {
	if tier == v1alpha1.TierVM {
		return nil
	}
	return w.Spec.Traits.Capabilities
}

// remove stops and removes an instance and detaches it from its segment.
func (c *Controller) remove(ctx context.Context, ob observed) error {
	return c.removeInstance(ctx, ob, true)
}

// restartRemove stops and removes an instance that is about to start again in the same slot:
// it stays attached, so the slot keeps its address (Attach repairs what the runtime changed).
func (c *Controller) restartRemove(ctx context.Context, ob observed) error {
	return c.removeInstance(ctx, ob, false)
}

func (c *Controller) removeInstance(ctx context.Context, ob observed, detach bool) error {
	id := ob.status.ID
	delete(c.health, id)
	defer c.changed()
	if ob.status.State == runtime.StateRunning || ob.status.State == runtime.StateStopping || ob.status.State == runtime.StateCreating {
		if err := ob.driver.Stop(ctx, id, c.o.StopGrace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			return fmt.Errorf("stop %s: %w", id, err)
		}
	}
	if err := ob.driver.Remove(ctx, id); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if c.o.Network != nil && detach {
		if err := c.o.Network.Detach(ctx, ob.status.Labels[LabelSegment], id); err != nil {
			return fmt.Errorf("detach %s: %w", id, err)
		}
	}
	return nil
}

// start attaches and starts the instance of one slot.
func (c *Controller) start(ctx context.Context, w *v1alpha1.Workload, tier v1alpha1.Tier, d runtime.Driver, wr where, slot int, hash string) (runtime.Status, string, error) {
	id := InstanceID(w.Metadata.Name, slot)
	spec := runtime.InstanceSpec{
		ID: id, Workload: w.Metadata.Name, Slot: slot, Tier: tier, Image: w.Spec.Image,
		Command: w.Spec.Command, Env: w.Spec.Env, Capabilities: grantedCapabilities(w, tier),
		CPUMilli: w.Spec.Resources.CPU.MilliValue(), MemoryBytes: w.Spec.Resources.Memory.Value(),
		LogPath: filepath.Join(c.o.DataDir, "logs", id+".log"),
		Labels:  map[string]string{LabelSpecHash: hash, LabelSegment: w.Spec.Segment},
	}
	if wr.NodeVM {
		spec.Labels[runtime.LabelIsolationClass] = wr.Class
	}
	// A VM gets a tap; so does a replica in a node VM, whose driver plugs the tap into the
	// node VM as the replica's own NIC (Capabilities.VMNet); other containers and
	// sandboxes join a network namespace. A driver that can do neither gets no
	// attachment: the plan has refused the workloads that need one.
	caps := d.Capabilities()
	asVM := tier == v1alpha1.TierVM || caps.VMNet
	attach := c.o.Network != nil && (asVM || caps.NetNS)
	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o700); err != nil {
		return runtime.Status{}, "", fmt.Errorf("log directory: %w", err)
	}
	for _, v := range w.Spec.Volumes {
		dir := runtime.VolumeDir(c.o.DataDir, w.Metadata.Name, v.Name, slot)
		// Instances may run as any user; the data dir above is private to root.
		if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // see above
			return runtime.Status{}, "", fmt.Errorf("volume %s: %w", v.Name, err)
		}
		spec.Mounts = append(spec.Mounts, runtime.Mount{HostPath: dir, Path: v.MountPath})
	}
	layer := runtime.RootfsLayerFile(c.o.DataDir, w.Metadata.Name, slot)
	if _, ok := d.(runtime.RootfsSaver); ok && tier != v1alpha1.TierVM {
		// A restore left the slot's root filesystem: the instance starts from it.
		if _, err := os.Stat(layer); err == nil {
			spec.RootfsLayer = layer
		}
	}
	if tier == v1alpha1.TierVM {
		spec.Progress = func(msg string) { c.event(ctx, w.Metadata.Name, id, "Normal", "Preparing", msg) }
		spec.VM = resolveVMFiles(w.Spec.VM, runtime.ImagesDir(c.o.DataDir))
		if w.Spec.VM != nil && w.Spec.VM.Disk != nil {
			// The slot's disk is data, like a volume: it outlives instances.
			spec.DiskDir = runtime.SlotDiskDir(c.o.DataDir, w.Metadata.Name, slot)
		}
		if w.Spec.Resources.Disk != nil {
			spec.DiskBytes = w.Spec.Resources.Disk.Value()
		}
	}
	ip := ""
	if attach {
		a, err := c.o.Network.Attach(ctx, w.Spec.Segment, id, asVM)
		if err != nil {
			return runtime.Status{}, "", fmt.Errorf("attach %s to segment %s: %w", id, w.Spec.Segment, err)
		}
		spec.NetNS, spec.VMNet = a.NetNS, a.VMNet
		if a.IP.IsValid() {
			ip = a.IP.String()
		}
		if a.ResolvConf != "" && !asVM {
			spec.Mounts = append(spec.Mounts, runtime.Mount{HostPath: a.ResolvConf, Path: "/etc/resolv.conf", ReadOnly: true})
		}
	}
	begin := c.o.Clock()
	st, err := d.Start(ctx, spec)
	c.changed()
	if err != nil {
		if attach {
			// Undo the attach, also when ctx has ended (that may be why Start failed): on a
			// context of its own, or the namespace, veth and address stay behind.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
			defer cancel()
			if derr := c.o.Network.Detach(uctx, w.Spec.Segment, id); derr != nil {
				err = errors.Join(err, fmt.Errorf("undo the attach: %w", derr))
			}
		}
		return runtime.Status{}, "", err
	}
	if w.Spec.Health == nil {
		c.observeStartup(tier, c.o.Clock().Sub(begin))
	} else {
		// It serves once its first health check passes (checkHealth).
		c.health[id] = &probeState{startedAt: begin, tier: tier}
	}
	if spec.RootfsLayer != "" {
		// Applied: later starts of the slot begin from the image again, as every
		// container restart does.
		if err := os.Remove(layer); err != nil {
			c.log.Warn("remove an applied root filesystem layer", "instance", id, "err", err)
		}
		_ = os.Remove(filepath.Dir(layer))               // the slot's directory and
		_ = os.Remove(filepath.Dir(filepath.Dir(layer))) // the workload's, once empty
	}
	return st, ip, nil
}

// undoTimeout bounds the undoing of a failed start.
const undoTimeout = 30 * time.Second

// resolveVMFiles returns vm with relative kernel, initrd and disk names resolved under
// imagesDir (admission has refused names that leave it).
func resolveVMFiles(vm *v1alpha1.VMSource, imagesDir string) *v1alpha1.VMSource {
	if vm == nil {
		return nil
	}
	out := *vm
	out.Kernel = runtime.ResolveVMFile(imagesDir, vm.Kernel)
	out.Initrd = runtime.ResolveVMFile(imagesDir, vm.Initrd)
	if vm.Disk != nil {
		d := *vm.Disk
		d.Path = runtime.ResolveVMFile(imagesDir, d.Path)
		out.Disk = &d
	}
	return &out
}

// observeStartup records how long an instance of tier took to serve.
func (c *Controller) observeStartup(tier v1alpha1.Tier, d time.Duration) {
	c.o.Startups.Observe(tier, d)
	if c.o.ObserveStartup != nil {
		c.o.ObserveStartup(tier, d)
	}
}
