package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/store"
)

// Restore puts a snapshot back into its workload. A VM snapshot with memory replaces
// the running guests; any other is restored by holding the workload, putting the saved
// disks and volumes in place and letting it start again. See the package documentation.
func (m *Manager) Restore(ctx context.Context, workload, name string) (*v1alpha1.Snapshot, error) {
	begin := m.o.Clock()
	snap, err := m.Get(ctx, workload, name)
	if err != nil {
		return nil, err
	}
	if snap.Status == nil {
		return nil, fmt.Errorf("%w: snapshot %s of %s has no status", ErrInvalid, name, workload)
	}
	w, err := m.workload(ctx, workload)
	if err != nil {
		return nil, err
	}
	if w.Status.Tier != snap.Status.Tier {
		return nil, fmt.Errorf("%w: snapshot %s holds a %s but %s now runs as a %s", ErrInvalid, name, snap.Status.Tier, workload, w.Status.Tier)
	}
	driver, err := m.o.Drivers.ForTier(w.Status.Tier)
	if err != nil {
		return nil, err
	}
	dir := Dir(m.o.DataDir, workload, name)
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("snapshot %s of %s: its files are gone: %w", name, workload, err)
	}
	if snap.Spec.Memory {
		err = m.restoreRunning(ctx, w, driver, snap, dir)
	} else {
		err = m.restoreCold(ctx, w, driver, snap, dir)
	}
	if err != nil {
		m.event(ctx, workload, "Warning", "RestoreFailed", fmt.Sprintf("snapshot %s: %v", name, err))
		return nil, err
	}
	m.event(ctx, workload, "Normal", "Restored", fmt.Sprintf("snapshot %s of %s restored in %s",
		name, snap.Status.Time.Format(time.RFC3339), m.o.Clock().Sub(begin).Round(time.Millisecond)))
	return snap, nil
}

// restoreRunning replaces each running guest by its saved state.
func (m *Manager) restoreRunning(ctx context.Context, w *v1alpha1.Workload, driver runtime.Driver, snap *v1alpha1.Snapshot, dir string) error {
	saver, ok := driver.(runtime.StateSaver)
	if !ok {
		return fmt.Errorf("%w: driver %s cannot restore VM state", runtime.ErrUnsupported, driver.Name())
	}
	bySlot := map[int]v1alpha1.Instance{}
	for _, in := range runningInstances(w) {
		bySlot[slotOf(in.ID)] = in
	}
	for _, s := range snap.Status.Slots {
		in, ok := bySlot[s.Slot]
		if !ok {
			return fmt.Errorf("%w: slot %d of %s does not run; a snapshot with memory resumes a running VM: let the workload start it first",
				ErrInvalid, s.Slot, w.Metadata.Name)
		}
		sd := filepath.Join(dir, "slot-"+fmt.Sprint(s.Slot))
		saved := runtime.SavedState{Memory: filepath.Join(sd, "memory.state"), Disk: filepath.Join(sd, "disk.qcow2")}
		if err := saver.RestoreState(ctx, in.ID, saved); err != nil {
			return fmt.Errorf("restore %s: %w", in.ID, err)
		}
	}
	return nil
}

// restoreCold holds the workload, puts the saved disks or volumes in place, and lets it
// start again.
func (m *Manager) restoreCold(ctx context.Context, w *v1alpha1.Workload, driver runtime.Driver, snap *v1alpha1.Snapshot, dir string) (err error) {
	name := w.Metadata.Name
	var restorer runtime.DiskRestorer
	if w.Status.Tier == v1alpha1.TierVM {
		if w.Spec.VM == nil || w.Spec.VM.Disk == nil {
			return fmt.Errorf("%w: %s boots an image or a kernel: its root disk starts anew at every start, so only a snapshot taken with --memory restores it",
				ErrInvalid, name)
		}
		var ok bool
		if restorer, ok = driver.(runtime.DiskRestorer); !ok {
			return fmt.Errorf("%w: driver %s cannot restore disks", runtime.ErrUnsupported, driver.Name())
		}
	}
	if err := m.setHold(ctx, name, "restoring snapshot "+snap.Spec.Name); err != nil {
		return err
	}
	defer func() {
		if herr := m.setHold(context.WithoutCancel(ctx), name, ""); herr != nil {
			err = errors.Join(err, fmt.Errorf("release the hold on %s (remove annotation %s): %w", name, v1alpha1.AnnotationHold, herr))
		}
	}()
	if err := m.waitStopped(ctx, name); err != nil {
		return err
	}
	return PutData(ctx, m.o.DataDir, name, w.Spec.VM, restorer, snap.Status.Slots, dir)
}

// PutData puts saved slot files (as a snapshot's slots name them, relative to dir) in
// place for workload, whose instances must not run: VM disks through restorer (nil for
// containers and sandboxes; base is the workload's spec.vm), volume archives into the
// slots' volume directories. Backups restore through it too.
func PutData(ctx context.Context, dataDir, workload string, vm *v1alpha1.VMSource, restorer runtime.DiskRestorer,
	slots []v1alpha1.SnapshotSlot, dir string) error {
	if err := CheckSlotFiles(slots); err != nil {
		return err
	}
	for _, s := range slots {
		// A layer an earlier restore left for this slot is not part of this data.
		if err := os.Remove(runtime.RootfsLayerFile(dataDir, workload, s.Slot)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("slot %d: %w", s.Slot, err)
		}
		for _, f := range s.Files {
			path := filepath.Join(dir, f)
			switch {
			case filepath.Base(f) == "disk.qcow2" || filepath.Base(f) == DiskImageFile:
				if restorer == nil || vm == nil || vm.Disk == nil {
					return fmt.Errorf("%w: slot %d holds a VM disk but %s has no vm.disk to restore it into", ErrInvalid, s.Slot, workload)
				}
				if err := restorer.RestoreSlotDisk(ctx, runtime.SlotDiskDir(dataDir, workload, s.Slot), vm.Disk.Path, path); err != nil {
					return fmt.Errorf("slot %d: %w", s.Slot, err)
				}
			case filepath.Base(f) == RootfsFile:
				if err := putRootfs(path, runtime.RootfsLayerFile(dataDir, workload, s.Slot)); err != nil {
					return fmt.Errorf("slot %d: root filesystem: %w", s.Slot, err)
				}
			case filepath.Ext(f) == ".tar":
				volume := filepath.Base(f[:len(f)-len(".tar")])
				if err := readTar(path, runtime.VolumeDir(dataDir, workload, volume, s.Slot)); err != nil {
					return fmt.Errorf("slot %d: volume %s: %w", s.Slot, volume, err)
				}
			}
		}
	}
	return nil
}

// CheckSlotFiles refuses slot file names that a restore could not keep beneath its
// directories: a name must be local to the directory it was saved in, and a volume
// archive's name (VOLUME.tar) must name a volume by a DNS label. A backup's names come
// from its repository, which other hosts may write: they are checked before anything
// is downloaded or put in place. The error wraps ErrInvalid.
func CheckSlotFiles(slots []v1alpha1.SnapshotSlot) error {
	for _, s := range slots {
		for _, f := range s.Files {
			if !filepath.IsLocal(filepath.FromSlash(f)) {
				return fmt.Errorf("%w: slot %d: file %q leads outside the restore's directory", ErrInvalid, s.Slot, f)
			}
			if s.Slot < 0 {
				return fmt.Errorf("%w: slot %d: a slot number is not negative", ErrInvalid, s.Slot)
			}
			base := filepath.Base(f)
			if base == "disk.qcow2" || base == DiskImageFile || base == RootfsFile || filepath.Ext(base) != ".tar" {
				continue
			}
			if volume := strings.TrimSuffix(base, ".tar"); len(validation.IsDNS1123Label(volume)) > 0 {
				return fmt.Errorf("%w: slot %d: file %q: volume name %q is not a DNS label", ErrInvalid, s.Slot, f, volume)
			}
		}
	}
	return nil
}

// putRootfs copies a saved root filesystem layer to where the slot's next instance
// starts from it (the controller passes it as InstanceSpec.RootfsLayer).
func putRootfs(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := to + ".tmp"
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if serr := dst.Sync(); err == nil {
		err = serr
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, to)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// setHold sets (why != "") or removes the hold annotation, retrying on conflicts with
// the controller's writes.
func (m *Manager) setHold(ctx context.Context, workload, why string) error {
	for attempt := 0; ; attempt++ {
		rec, err := m.o.Store.Get(ctx, v1alpha1.KindWorkload, workload)
		if err != nil {
			return err
		}
		ann := map[string]string{}
		for k, v := range rec.Annotations {
			ann[k] = v
		}
		if why == "" {
			delete(ann, v1alpha1.AnnotationHold)
		} else {
			ann[v1alpha1.AnnotationHold] = why
		}
		rec.Annotations = ann
		_, err = m.o.Store.Update(ctx, rec)
		if errors.Is(err, store.ErrConflict) && attempt < 10 {
			continue
		}
		return err
	}
}

// waitStopped waits until the controller has stopped and removed every instance of
// the held workload.
func (m *Manager) waitStopped(ctx context.Context, workload string) error {
	ctx, cancel := context.WithTimeout(ctx, m.o.HoldTimeout)
	defer cancel()
	for {
		rec, err := m.o.Store.Get(ctx, v1alpha1.KindWorkload, workload)
		if err != nil {
			return err
		}
		w, err := objects.Workload(rec)
		if err != nil {
			return err
		}
		if w.Status == nil || len(w.Status.Instances) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the instances of %s did not stop within %s: %w", workload, m.o.HoldTimeout, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
