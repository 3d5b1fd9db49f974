package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/store"
)

// Group is what CreateGroup took: one snapshot per workload, all standing for one
// point in time when FrozenTogether is true.
type Group struct {
	Snapshots []*v1alpha1.Snapshot
	// FrozenTogether is true when every instance of every workload was paused before the
	// first byte was copied and resumed after the last: the snapshots are one consistent
	// point. It is false when some driver cannot pause; then each workload was copied on
	// its own, one after another, and Warnings say which.
	FrozenTogether bool
	Warnings       []string
}

// member is one workload of a group snapshot.
type member struct {
	w       *v1alpha1.Workload
	driver  runtime.Driver
	running []v1alpha1.Instance
	tmp     string
	hooked  bool // its pre hook ran, so its post hook must run
}

// VolumeIndex returns, for a volume of a workload's slot (or its root filesystem layer,
// volume RootfsIndex), what a backup's file index knows to be unchanged since the last
// backup (nil: nothing, copy everything).
type VolumeIndex func(workload string, slot int, volume string) Unchanged

// RootfsIndex is the volume name under which a VolumeIndex is asked about a slot's root
// filesystem layer (RootfsFile): no volume can have it, volume names are DNS labels.
const RootfsIndex = ""

// GroupOptions are CreateGroupWith's options.
type GroupOptions struct {
	// Index, when set, makes the snapshot one for a backup: every volume archive gets
	// its plan (PlanSuffix), and the content of large files the index knows unchanged
	// is left out of it; so does the root filesystem layer when its driver can
	// (runtime.RootfsPlanSaver). Such a snapshot is for the backup that reads it, not for
	// Restore.
	Index VolumeIndex
	// Disks, when set, copies the disk of a VM whose driver keeps checkpoints
	// (runtime.DiskCheckpointer) as a raw image (DiskImageFile) with its plan
	// (PlanSuffix): only the blocks written since the checkpoint Disks names, when
	// the disk still holds it intact. Disks returns the request without its Path.
	Disks func(workload string, slot int) runtime.DiskCopyRequest
}

// CreateGroup snapshots several workloads at one point, under the same snapshot name:
// every workload's pre hook runs first, then every running instance of every workload is
// paused, all disks and volumes are copied, every instance resumes, and every post hook
// runs. A VM's disk is copied while its guest is paused too, so a group with VMs pauses
// them for the length of the copy. Nothing is left behind when it fails.
func (m *Manager) CreateGroup(ctx context.Context, workloads []string, name string) (g *Group, err error) {
	return m.CreateGroupWith(ctx, workloads, name, GroupOptions{})
}

// CreateGroupWith is CreateGroup with options.
func (m *Manager) CreateGroupWith(ctx context.Context, workloads []string, name string, opts GroupOptions) (g *Group, err error) {
	begin := m.o.Clock()
	if len(workloads) == 0 {
		return nil, fmt.Errorf("%w: no workload named", ErrInvalid)
	}
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return nil, fmt.Errorf("%w: snapshot name %q: use a DNS label", ErrInvalid, name)
	}
	var members []*member
	defer func() {
		for _, mb := range members {
			_ = os.RemoveAll(mb.tmp)
		}
	}()
	seen := map[string]bool{}
	for _, wl := range workloads {
		if seen[wl] {
			return nil, fmt.Errorf("%w: workload %s is named twice", ErrInvalid, wl)
		}
		seen[wl] = true
		mb, err := m.prepare(ctx, wl, name)
		if err != nil {
			return nil, err
		}
		members = append(members, mb)
	}
	g = &Group{FrozenTogether: true}
	defer func() { m.groupPostHooks(ctx, members) }()
	for _, mb := range members {
		spec := mb.w.Spec.Backup
		if spec == nil || spec.Hooks == nil || len(spec.Hooks.Pre) == 0 {
			continue
		}
		mb.hooked = true
		if err := m.hook(ctx, mb.driver, mb.running, spec.Hooks.Pre, "pre"); err != nil {
			return nil, fmt.Errorf("workload %s: %w", mb.w.Metadata.Name, err)
		}
	}
	resume, warnings := m.freezeAll(ctx, members)
	if len(warnings) > 0 {
		g.FrozenTogether = false
		g.Warnings = append(g.Warnings, warnings...)
	}
	type taken struct {
		slots    []v1alpha1.SnapshotSlot
		warnings []string
		at       time.Time
	}
	results := make([]taken, len(members))
	at := m.o.Clock()
	for i, mb := range members {
		slots, warns, when, err := m.copySlots(ctx, mb.w, mb.driver, mb.running, mb.tmp, false, g.FrozenTogether, opts)
		if err != nil {
			resume()
			return nil, fmt.Errorf("workload %s: %w", mb.w.Metadata.Name, err)
		}
		if g.FrozenTogether {
			when = at
		}
		results[i] = taken{slots, warns, when}
	}
	resume()
	for i, mb := range members {
		st := &v1alpha1.SnapshotStatus{Tier: mb.w.Status.Tier, Consistency: "crash", Workload: &mb.w.Spec,
			Time: results[i].at.UTC(), Slots: results[i].slots, Warnings: results[i].warnings}
		if mb.hooked {
			st.Consistency = "application"
		}
		st.Bytes = diskUsage(mb.tmp)
		snap, err := m.record(ctx, mb.w.Metadata.Name, name, false, st, mb.tmp)
		if err != nil {
			for _, s := range g.Snapshots {
				_ = m.Delete(context.WithoutCancel(ctx), s.Spec.Workload, name)
			}
			return nil, err
		}
		g.Snapshots = append(g.Snapshots, snap)
		m.event(ctx, mb.w.Metadata.Name, "Normal", "Snapshotted", fmt.Sprintf("snapshot %s (with %d workloads): %d slots, %s, %s-consistent, in %s",
			name, len(members), len(st.Slots), bytesText(st.Bytes), st.Consistency, m.o.Clock().Sub(begin).Round(time.Millisecond)))
	}
	return g, nil
}

// prepare checks that workload can be snapshotted under name and makes its temporary
// directory.
func (m *Manager) prepare(ctx context.Context, workload, name string) (*member, error) {
	w, err := m.workload(ctx, workload)
	if err != nil {
		return nil, err
	}
	if _, err := m.o.Store.Get(ctx, v1alpha1.KindSnapshot, Key(workload, name)); err == nil {
		return nil, fmt.Errorf("snapshot %s of %s: %w (choose another name or delete it first)", name, workload, store.ErrAlreadyExists)
	}
	running := runningInstances(w)
	if len(running) == 0 {
		return nil, fmt.Errorf("%w: %s has no running instance to snapshot (its data is copied from running instances)", ErrInvalid, workload)
	}
	driver, err := m.driverOf(w, running)
	if err != nil {
		return nil, err
	}
	if _, ok := driver.(runtime.RootfsSaver); !ok && w.Status.Tier != v1alpha1.TierVM && len(w.Spec.Volumes) == 0 {
		return nil, fmt.Errorf("%w: %s has no volumes and driver %s cannot copy root filesystems: nothing to snapshot",
			ErrInvalid, workload, driver.Name())
	}
	tmp := filepath.Join(filepath.Dir(Dir(m.o.DataDir, workload, name)), "."+name+".tmp")
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot directory: %w", err)
	}
	return &member{w: w, driver: driver, running: running, tmp: tmp}, nil
}

// freezeAll pauses every running instance of every member. When a driver cannot pause,
// nothing stays paused and the warnings say why: the members are then copied one after
// another. resume lets every paused instance run again (once).
func (m *Manager) freezeAll(ctx context.Context, members []*member) (resume func(), warnings []string) {
	type pausedOne struct {
		p  runtime.Pauser
		id string
	}
	var paused []pausedOne
	resume = func() {
		for _, p := range paused {
			if err := p.p.Resume(context.WithoutCancel(ctx), p.id); err != nil {
				m.o.Logger.Error("group snapshot: resume after copy", "instance", p.id, "err", err)
			}
		}
		paused = nil
	}
	for _, mb := range members {
		if _, ok := mb.driver.(runtime.Pauser); !ok {
			warnings = append(warnings, fmt.Sprintf("driver %s cannot pause %s: the workloads were copied one after another",
				mb.driver.Name(), mb.w.Metadata.Name))
		}
	}
	if len(warnings) > 0 {
		return resume, warnings
	}
	for _, mb := range members {
		p := mb.driver.(runtime.Pauser)
		for _, in := range mb.running {
			if err := p.Pause(ctx, in.ID); err != nil {
				resume()
				return resume, []string{fmt.Sprintf("could not pause %s (%v): the workloads were copied one after another", in.ID, err)}
			}
			paused = append(paused, pausedOne{p, in.ID})
		}
	}
	return resume, nil
}

// groupPostHooks runs the post hook of every member whose pre hook ran.
func (m *Manager) groupPostHooks(ctx context.Context, members []*member) {
	for _, mb := range members {
		if mb.hooked {
			m.postHook(ctx, mb.driver, mb.running, mb.w)
		}
	}
}

// SetHold sets (why != "") or removes the hold annotation (strata.dev/hold) of a
// workload, retrying on conflicts with the controller's writes.
func (m *Manager) SetHold(ctx context.Context, workload, why string) error {
	return m.setHold(ctx, workload, why)
}

// WaitStopped waits until every instance of a held workload is stopped and removed.
func (m *Manager) WaitStopped(ctx context.Context, workload string) error {
	return m.waitStopped(ctx, workload)
}
