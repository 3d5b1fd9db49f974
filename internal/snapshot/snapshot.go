package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/store"
)

// Recorder records events.
type Recorder interface {
	Record(ctx context.Context, e objects.Event)
}

// Options configure a Manager.
type Options struct {
	Store   *store.Store
	Drivers *runtime.Registry
	// DataDir is the daemon's data directory: volumes/, disks/ and snapshots/ are under it.
	DataDir string
	Events  Recorder
	Clock   func() time.Time
	Logger  *slog.Logger
	// HoldTimeout bounds how long a restore waits for the workload's instances to stop
	// (default 3 minutes).
	HoldTimeout time.Duration
}

// Manager takes, restores and deletes snapshots. See the package documentation.
type Manager struct {
	o Options
}

// New returns a Manager.
func New(o Options) *Manager {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HoldTimeout <= 0 {
		o.HoldTimeout = 3 * time.Minute
	}
	return &Manager{o: o}
}

// ErrInvalid is a request that cannot be done as asked; the message says why and what
// to do. It is runtime.ErrInvalid, which the API answers as invalid input.
var ErrInvalid = runtime.ErrInvalid

// Dir is the directory of a snapshot.
func Dir(dataDir, workload, name string) string {
	return filepath.Join(dataDir, "snapshots", workload, name)
}

// Key is the store name of a workload's snapshot.
func Key(workload, name string) string { return workload + "." + name }

// Create snapshots the workload's running instances. An empty name is made from the
// time. Nothing is left behind when it fails.
func (m *Manager) Create(ctx context.Context, workload, name string, memory bool) (*v1alpha1.Snapshot, error) {
	begin := m.o.Clock()
	if name == "" {
		name = "snap-" + begin.UTC().Format("20060102-150405")
	}
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return nil, fmt.Errorf("%w: snapshot name %q: use a DNS label (lower case letters, digits and '-', such as before-upgrade)", ErrInvalid, name)
	}
	w, err := m.workload(ctx, workload)
	if err != nil {
		return nil, err
	}
	if _, err := m.o.Store.Get(ctx, v1alpha1.KindSnapshot, Key(workload, name)); err == nil {
		return nil, fmt.Errorf("snapshot %s of %s: %w (choose another --name or delete it first)", name, workload, store.ErrAlreadyExists)
	}
	tier := w.Status.Tier
	if memory && tier != v1alpha1.TierVM {
		return nil, fmt.Errorf("%w: --memory is for VMs; %s is a %s (its volumes are snapshotted without it)", ErrInvalid, workload, tier)
	}
	running := runningInstances(w)
	if len(running) == 0 {
		return nil, fmt.Errorf("%w: %s has no running instance to snapshot (its data is copied from running instances)", ErrInvalid, workload)
	}
	driver, err := m.driverOf(w, running)
	if err != nil {
		return nil, err
	}
	final := Dir(m.o.DataDir, workload, name)
	tmp := filepath.Join(filepath.Dir(final), "."+name+".tmp")
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	st := &v1alpha1.SnapshotStatus{Tier: tier, Consistency: "crash", Workload: &w.Spec}
	hooks := w.Spec.Backup != nil && w.Spec.Backup.Hooks != nil
	if hooks && len(w.Spec.Backup.Hooks.Pre) > 0 {
		if err := m.hook(ctx, driver, running, w.Spec.Backup.Hooks.Pre, "pre"); err != nil {
			m.postHook(ctx, driver, running, w)
			return nil, err
		}
		st.Consistency = "application"
	}
	slots, warnings, at, err := m.copySlots(ctx, w, driver, running, tmp, memory, false, GroupOptions{})
	m.postHook(ctx, driver, running, w)
	if err != nil {
		return nil, err
	}
	st.Time, st.Slots, st.Warnings = at.UTC(), slots, warnings
	st.Bytes = diskUsage(tmp)
	snap, err := m.record(ctx, workload, name, memory, st, tmp)
	if err != nil {
		return nil, err
	}
	m.event(ctx, workload, "Normal", "Snapshotted", fmt.Sprintf("snapshot %s: %d slots, %s, %s-consistent, in %s",
		name, len(slots), bytesText(st.Bytes), st.Consistency, m.o.Clock().Sub(begin).Round(time.Millisecond)))
	return snap, nil
}

// record moves the snapshot's files from tmp to their place and stores its record;
// nothing is left behind when it fails.
func (m *Manager) record(ctx context.Context, workload, name string, memory bool, st *v1alpha1.SnapshotStatus, tmp string) (*v1alpha1.Snapshot, error) {
	final := Dir(m.o.DataDir, workload, name)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("snapshot directory: %w", err)
	}
	spec := v1alpha1.SnapshotSpec{Workload: workload, Name: name, Memory: memory}
	rec, err := objects.Record(v1alpha1.KindSnapshot, v1alpha1.ObjectMeta{Name: Key(workload, name),
		Labels: map[string]string{"strata.dev/workload": workload}}, spec, st)
	if err == nil {
		rec, err = m.o.Store.Create(ctx, rec)
	}
	if err != nil {
		_ = os.RemoveAll(final)
		return nil, fmt.Errorf("record snapshot %s of %s: %w", name, workload, err)
	}
	return objects.Snapshot(rec)
}

// copySlots copies every running instance's data into dir/slot-N and returns what it
// took and the moment it stands for. frozen says the caller has already paused the
// instances (a group snapshot): containers are then copied as they are.
func (m *Manager) copySlots(ctx context.Context, w *v1alpha1.Workload, driver runtime.Driver, running []v1alpha1.Instance,
	dir string, memory, frozen bool, opts GroupOptions) ([]v1alpha1.SnapshotSlot, []string, time.Time, error) {
	var (
		slots    []v1alpha1.SnapshotSlot
		warnings []string
	)
	if w.Status.Tier == v1alpha1.TierVM {
		saver, ok := driver.(runtime.StateSaver)
		if !ok {
			return nil, nil, time.Time{}, fmt.Errorf("%w: driver %s cannot snapshot VMs", runtime.ErrUnsupported, driver.Name())
		}
		checkpointer, _ := driver.(runtime.DiskCheckpointer)
		at := m.o.Clock()
		for _, in := range running {
			sd := filepath.Join(dir, slotDir(in.ID))
			if err := os.MkdirAll(sd, 0o700); err != nil {
				return nil, nil, at, err
			}
			slot := v1alpha1.SnapshotSlot{Slot: slotOf(in.ID), Instance: in.ID}
			switch {
			case !memory && opts.Disks != nil && checkpointer != nil:
				rel := filepath.Join(slotDir(in.ID), DiskImageFile)
				why, err := copyDisk(ctx, checkpointer, in.ID, opts.Disks(w.Metadata.Name, slotOf(in.ID)), filepath.Join(dir, rel))
				if errors.Is(err, runtime.ErrUnsupported) {
					warnings = append(warnings, fmt.Sprintf("%s has no disk: nothing to copy (a kernel-only VM keeps no data)", in.ID))
					continue
				}
				if err != nil {
					return nil, nil, at, fmt.Errorf("copy the disk of %s: %w", in.ID, err)
				}
				if why != "" {
					warnings = append(warnings, fmt.Sprintf("%s: the whole disk was read: %s", in.ID, why))
				}
				slot.Files = []string{rel}
			case memory:
				if _, err := saver.SaveState(ctx, in.ID, sd); err != nil {
					return nil, nil, at, fmt.Errorf("save the state of %s: %w", in.ID, err)
				}
				slot.Files = []string{filepath.Join(slotDir(in.ID), "disk.qcow2"), filepath.Join(slotDir(in.ID), "memory.state")}
			default:
				err := saver.SnapshotDisk(ctx, in.ID, filepath.Join(sd, "disk.qcow2"))
				if errors.Is(err, runtime.ErrUnsupported) {
					warnings = append(warnings, fmt.Sprintf("%s has no disk: nothing to copy (a kernel-only VM keeps no data)", in.ID))
					continue
				}
				if err != nil {
					return nil, nil, at, fmt.Errorf("snapshot the disk of %s: %w", in.ID, err)
				}
				slot.Files = []string{filepath.Join(slotDir(in.ID), "disk.qcow2")}
			}
			slots = append(slots, slot)
		}
		return slots, warnings, at, nil
	}
	rootfs, _ := driver.(runtime.RootfsSaver)
	if rootfs == nil && len(w.Spec.Volumes) == 0 {
		return nil, nil, time.Time{}, fmt.Errorf("%w: %s has no volumes and driver %s cannot copy root filesystems: nothing to snapshot",
			ErrInvalid, w.Metadata.Name, driver.Name())
	}
	if rootfs == nil {
		warnings = append(warnings, fmt.Sprintf("driver %s cannot copy root filesystems: only the volumes were copied", driver.Name()))
	}
	pauser, _ := driver.(runtime.Pauser)
	switch {
	case frozen:
	case pauser != nil:
		var paused []string
		defer func() {
			for _, id := range paused {
				if err := pauser.Resume(context.WithoutCancel(ctx), id); err != nil {
					m.o.Logger.Error("snapshot: resume after copy", "instance", id, "err", err)
				}
			}
		}()
		for _, in := range running {
			if err := pauser.Pause(ctx, in.ID); err != nil {
				return nil, nil, time.Time{}, fmt.Errorf("freeze %s: %w", in.ID, err)
			}
			paused = append(paused, in.ID)
		}
	default:
		warnings = append(warnings, fmt.Sprintf("driver %s cannot freeze instances: volumes were copied while they ran", driver.Name()))
	}
	at := m.o.Clock()
	for _, in := range running {
		slot := v1alpha1.SnapshotSlot{Slot: slotOf(in.ID), Instance: in.ID}
		if rootfs != nil {
			rel := filepath.Join(slotDir(in.ID), RootfsFile)
			var unchanged Unchanged
			if opts.Index != nil {
				unchanged = opts.Index(w.Metadata.Name, slotOf(in.ID), RootfsIndex)
			}
			if err := saveRootfs(ctx, rootfs, in.ID, filepath.Join(dir, rel), unchanged); err != nil {
				return nil, nil, at, err
			}
			slot.Files = append(slot.Files, rel)
		}
		for _, v := range w.Spec.Volumes {
			rel := filepath.Join(slotDir(in.ID), "volumes", v.Name+".tar")
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o700); err != nil {
				return nil, nil, at, err
			}
			src := runtime.VolumeDir(m.o.DataDir, w.Metadata.Name, v.Name, slotOf(in.ID))
			var unchanged Unchanged
			if opts.Index != nil {
				unchanged = opts.Index(w.Metadata.Name, slotOf(in.ID), v.Name)
			}
			if err := writeTar(filepath.Join(dir, rel), src, unchanged); err != nil {
				return nil, nil, at, fmt.Errorf("copy volume %s of %s: %w", v.Name, in.ID, err)
			}
			slot.Files = append(slot.Files, rel)
		}
		slots = append(slots, slot)
	}
	return slots, warnings, at, nil
}

// DiskImageFile is the name of a VM slot's disk in a backup's snapshot: a raw image
// of the disk (GroupOptions.Disks), with its plan (DiskPlan) beside it.
const DiskImageFile = "disk.img"

// DiskPlan is what a backup snapshot's raw disk copy holds: the whole disk, or only
// the blocks written since checkpoint Since (Changed), the rest reading as zeros.
// Checkpoint is the checkpoint the copy started, for the next backup.
type DiskPlan struct {
	runtime.DiskCopy
	Since      string `json:"since,omitempty"`
	Checkpoint string `json:"checkpoint"`
	Instance   string `json:"instance"`
}

// copyDisk copies a VM's disk for a backup to path and writes its plan; it returns
// why the copy is whole when it was asked to start from a checkpoint.
func copyDisk(ctx context.Context, c runtime.DiskCheckpointer, id string, req runtime.DiskCopyRequest, path string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	req.Path = path
	copied, err := c.CopyDisk(ctx, id, req)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(DiskPlan{DiskCopy: copied, Since: req.Since, Checkpoint: req.Checkpoint, Instance: id})
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path+PlanSuffix, data, 0o600); err != nil {
		return "", err
	}
	return copied.Reason, nil
}

// ReadDiskPlan reads the plan of a raw disk copy (DiskImageFile).
func ReadDiskPlan(image string) (DiskPlan, error) {
	var p DiskPlan
	data, err := os.ReadFile(image + PlanSuffix)
	if err == nil {
		err = json.Unmarshal(data, &p)
	}
	if err != nil {
		return p, fmt.Errorf("disk plan of %s: %w", image, err)
	}
	return p, nil
}

// RootfsFile is the name of a container or sandbox slot's root filesystem layer in a
// snapshot (runtime.RootfsSaver).
const RootfsFile = "rootfs.tar"

// saveRootfs writes instance id's root filesystem layer to path. With unchanged set
// (a backup's snapshot) and a driver that can (runtime.RootfsPlanSaver), it leaves out
// the content of the large files unchanged says the last backup holds and writes the
// layer's plan next to it (PlanSuffix), as writeTar does for a volume; a driver that
// cannot writes the layer whole, with no plan.
func saveRootfs(ctx context.Context, saver runtime.RootfsSaver, id, path string, unchanged Unchanged) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = writeRootfs(ctx, saver, id, path, f, unchanged)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy the root filesystem of %s: %w", id, err)
	}
	return nil
}

func writeRootfs(ctx context.Context, saver runtime.RootfsSaver, id, path string, f *os.File, unchanged Unchanged) error {
	if ps, ok := saver.(runtime.RootfsPlanSaver); ok && unchanged != nil {
		plan, err := ps.SaveRootfsPlan(ctx, id, f, unchanged)
		if err == nil {
			// Read once by the backup and deleted, like a volume's archive: no sync.
			return writePlan(path, plan)
		}
		if !errors.Is(err, runtime.ErrUnsupported) {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := f.Truncate(0); err != nil {
			return err
		}
	}
	if err := saver.SaveRootfs(ctx, id, f); err != nil {
		return err
	}
	return f.Sync()
}

// hook runs cmd in every instance; the first failure ends it.
func (m *Manager) hook(ctx context.Context, driver runtime.Driver, running []v1alpha1.Instance, cmd []string, which string) error {
	ex, ok := driver.(runtime.Execer)
	if !ok {
		return fmt.Errorf("%w: spec.backup.hooks need exec, which driver %s cannot do", ErrInvalid, driver.Name())
	}
	for _, in := range running {
		var out strings.Builder
		code, err := ex.Exec(ctx, in.ID, cmd, nil, &out, &out)
		if err == nil && code != 0 {
			err = fmt.Errorf("exit code %d: %s", code, strings.TrimSpace(out.String()))
		}
		if err != nil {
			return fmt.Errorf("%s hook %v in %s: %w", which, cmd, in.ID, err)
		}
	}
	return nil
}

// postHook runs the post hook, if any; its failures are reported as events, not errors:
// the snapshot is taken by then.
func (m *Manager) postHook(ctx context.Context, driver runtime.Driver, running []v1alpha1.Instance, w *v1alpha1.Workload) {
	if w.Spec.Backup == nil || w.Spec.Backup.Hooks == nil || len(w.Spec.Backup.Hooks.Post) == 0 {
		return
	}
	if err := m.hook(context.WithoutCancel(ctx), driver, running, w.Spec.Backup.Hooks.Post, "post"); err != nil {
		m.event(ctx, w.Metadata.Name, "Warning", "HookFailed", err.Error())
	}
}

// List returns the snapshots of workload ("" for all), oldest first.
func (m *Manager) List(ctx context.Context, workload string) ([]*v1alpha1.Snapshot, error) {
	recs, _, err := m.o.Store.List(ctx, v1alpha1.KindSnapshot)
	if err != nil {
		return nil, err
	}
	var out []*v1alpha1.Snapshot
	for _, rec := range recs {
		s, err := objects.Snapshot(rec)
		if err != nil {
			return nil, err
		}
		if workload == "" || s.Spec.Workload == workload {
			out = append(out, s)
		}
	}
	return out, nil
}

// Get returns one snapshot.
func (m *Manager) Get(ctx context.Context, workload, name string) (*v1alpha1.Snapshot, error) {
	rec, err := m.o.Store.Get(ctx, v1alpha1.KindSnapshot, Key(workload, name))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s of %s: %w", name, workload, err)
	}
	return objects.Snapshot(rec)
}

// Delete removes a snapshot's files and record.
func (m *Manager) Delete(ctx context.Context, workload, name string) error {
	if _, err := m.Get(ctx, workload, name); err != nil {
		return err
	}
	if err := os.RemoveAll(Dir(m.o.DataDir, workload, name)); err != nil {
		return fmt.Errorf("delete snapshot %s of %s: %w", name, workload, err)
	}
	_ = os.Remove(filepath.Dir(Dir(m.o.DataDir, workload, name))) // the workload's directory, once empty
	return m.o.Store.Delete(ctx, v1alpha1.KindSnapshot, Key(workload, name), 0)
}

func (m *Manager) workload(ctx context.Context, name string) (*v1alpha1.Workload, error) {
	rec, err := m.o.Store.Get(ctx, v1alpha1.KindWorkload, name)
	if err != nil {
		return nil, fmt.Errorf("workload %s: %w", name, err)
	}
	w, err := objects.Workload(rec)
	if err != nil {
		return nil, err
	}
	if w.Status == nil || w.Status.Tier == "" {
		return nil, fmt.Errorf("%w: workload %s has not been assessed yet", ErrInvalid, name)
	}
	return w, nil
}

func (m *Manager) event(ctx context.Context, workload, typ, reason, msg string) {
	if m.o.Events != nil {
		m.o.Events.Record(ctx, objects.Event{Type: typ, Reason: reason, Object: "Workload/" + workload, Message: msg})
	}
}

func runningInstances(w *v1alpha1.Workload) []v1alpha1.Instance {
	var out []v1alpha1.Instance
	for _, in := range w.Status.Instances {
		if in.State == string(runtime.StateRunning) {
			out = append(out, in)
		}
	}
	return out
}

// driverOf returns the driver that runs the workload's running instances: the one
// their status names (the node VM driver for replicas inside node VMs), else the
// tier's driver on the host. Instances that run on two drivers (a replica started
// again elsewhere after its workload's node VM decision changed) are refused: a
// snapshot copies every slot the same way.
func (m *Manager) driverOf(w *v1alpha1.Workload, running []v1alpha1.Instance) (runtime.Driver, error) {
	name := running[0].Driver
	for _, in := range running[1:] {
		if in.Driver != name {
			return nil, fmt.Errorf("%w: the running instances of %s are on two drivers, %s on %q and %s on %q; snapshot it once they run in one place",
				ErrInvalid, w.Metadata.Name, running[0].ID, name, in.ID, in.Driver)
		}
	}
	return m.o.Drivers.ForInstance(w.Status.Tier, name)
}

// slotOf is the slot number of an instance ID (WORKLOAD-SLOT).
func slotOf(id string) int {
	n, _ := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	return n
}

func slotDir(id string) string { return "slot-" + strconv.Itoa(slotOf(id)) }

// diskUsage is the space the files under dir take.
func diskUsage(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
