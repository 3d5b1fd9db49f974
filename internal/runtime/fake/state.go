package fake

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

var (
	_ runtime.Pauser       = (*Driver)(nil)
	_ runtime.StateSaver   = (*Driver)(nil)
	_ runtime.DiskRestorer = (*Driver)(nil)
)

// The files of a slot disk directory (InstanceSpec.DiskDir), named as the qemu
// driver names them.
const (
	slotDiskFile = "disk.qcow2" // the slot's disk (here: a disk archive)
	slotBaseFile = "base"       // the vm.disk the slot disk was made from
)

// Pause implements runtime.Pauser: the instance's main process stops making
// progress (a sleep's remaining time stands still, SIGTERM waits) until Resume.
// Status reports it running with the message "paused". Pausing a paused
// instance is not an error.
func (d *Driver) Pause(ctx context.Context, id string) error {
	return d.withRunning(ctx, OpPause, id, func(in *instance) error {
		if !in.paused {
			in.paused, in.pausedAt = true, d.host.clock.Now()
			d.host.rewatch(in)
		}
		return nil
	})
}

// Resume implements runtime.Pauser: the main process goes on where Pause
// stopped it. Resuming a running instance is not an error.
func (d *Driver) Resume(ctx context.Context, id string) error {
	return d.withRunning(ctx, OpResume, id, func(in *instance) error {
		if in.paused {
			frozen := d.host.clock.Now().Sub(in.pausedAt)
			if !in.endsAt.IsZero() {
				in.endsAt = in.endsAt.Add(frozen)
			}
			in.paused, in.pausedFor = false, in.pausedFor+frozen
			d.host.rewatch(in)
		}
		return nil
	})
}

// withRunning records op and runs fn on the running instance id under the
// host's lock.
func (d *Driver) withRunning(ctx context.Context, op Op, id string, fn func(*instance) error) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	h := d.host
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(op, id); err != nil {
		return err
	}
	in, err := d.lookup(id)
	if err == nil && in.exited() {
		err = fmt.Errorf("%s instance %q: %w", op, id, runtime.ErrNotRunning)
	}
	if err == nil {
		err = fn(in)
	}
	return h.fail(err)
}

// hasDisk reports whether the instance is a VM with a disk: an image VM (its
// root disk) or one that boots vm.disk; a kernel-only VM has none.
func (in *instance) hasDisk() bool {
	return in.spec.Tier == v1alpha1.TierVM && (in.spec.VM == nil || in.spec.VM.Disk != nil)
}

// diskOf returns the disk of a running VM; the errors are the qemu driver's.
func diskOf(in *instance, what string) error {
	switch {
	case in.spec.Tier != v1alpha1.TierVM:
		return fmt.Errorf("%s instance %q: %w: a %s has no disk (only VMs have)", what, in.spec.ID, runtime.ErrUnsupported, in.spec.Tier)
	case !in.hasDisk():
		return fmt.Errorf("%w: instance %q has no disk", runtime.ErrUnsupported, in.spec.ID)
	}
	return nil
}

// SnapshotDisk implements runtime.StateSaver: the VM's disk (the files its
// scripts wrote outside its mounts) as it is now goes to path, standalone; a
// failed copy leaves nothing at path. A paused VM can be copied.
func (d *Driver) SnapshotDisk(ctx context.Context, id, path string) error {
	return d.withRunning(ctx, OpSnapshotDisk, id, func(in *instance) error {
		if err := diskOf(in, "snapshot the disk of"); err != nil {
			return err
		}
		return writeDisk(path, in.files)
	})
}

// memoryState is what SaveState writes to memory.state: where the main process
// is in its script.
type memoryState struct {
	Command []string `json:"command"`
	// Remaining is how long the main process still runs; negative: until
	// stopped.
	Remaining   time.Duration `json:"remaining"`
	EndCode     int           `json:"endCode"`
	TermIgnored bool          `json:"termIgnored"`
}

// SaveState implements runtime.StateSaver: memory.state records where the main
// process is in its script (how long it still runs, how it ends, whether it
// ignores SIGTERM) and disk.qcow2 its disk, both of the same moment; the VM
// runs on (a paused one stays paused).
func (d *Driver) SaveState(ctx context.Context, id, dir string) (runtime.SavedState, error) {
	var saved runtime.SavedState
	err := d.withRunning(ctx, OpSaveState, id, func(in *instance) error {
		if err := diskOf(in, "save the state of"); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		mem := memoryState{Command: in.spec.Command, Remaining: -1, EndCode: in.endCode, TermIgnored: in.termIgnored}
		if !in.endsAt.IsZero() {
			now := d.host.clock.Now()
			if in.paused {
				now = in.pausedAt
			}
			mem.Remaining = in.endsAt.Sub(now)
		}
		data, err := json.Marshal(mem)
		if err != nil {
			return err
		}
		s := runtime.SavedState{Memory: filepath.Join(dir, "memory.state"), Disk: filepath.Join(dir, "disk.qcow2")}
		if err := writeDisk(s.Disk, in.files); err != nil {
			return err
		}
		if err := writeAtomic(s.Memory, data); err != nil {
			_ = os.Remove(s.Disk)
			return err
		}
		saved = s
		return nil
	})
	return saved, err
}

// RestoreState implements runtime.StateSaver: the instance's main process and
// disk are replaced by the saved ones, which go on from the saved moment, as a
// new process (a new PID) that runs, not paused. An instance that has exited
// runs again.
func (d *Driver) RestoreState(ctx context.Context, id string, s runtime.SavedState) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	h := d.host
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(OpRestoreState, id); err != nil {
		return err
	}
	return h.fail(d.restoreState(id, s))
}

func (d *Driver) restoreState(id string, s runtime.SavedState) error {
	h := d.host
	for _, f := range []string{s.Memory, s.Disk} {
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("%w: restore %q: %s is not a saved state file", runtime.ErrInvalid, id, f)
		}
	}
	in, err := d.lookup(id)
	if err != nil {
		return err
	}
	if err := diskOf(in, "restore"); err != nil {
		return err
	}
	data, err := os.ReadFile(s.Memory)
	if err != nil {
		return err
	}
	var mem memoryState
	if err := json.Unmarshal(data, &mem); err != nil {
		return fmt.Errorf("%w: restore %q: %s is not a saved memory state: %w", runtime.ErrInvalid, id, s.Memory, err)
	}
	files, err := readDisk(s.Disk)
	if err != nil {
		return fmt.Errorf("%w: restore %q: %w", runtime.ErrInvalid, id, err)
	}
	if err := in.putDisk(files); err != nil {
		return fmt.Errorf("instance %q: restore the disk: %w", id, err)
	}
	now := h.clock.Now()
	if in.exited() {
		in.done = make(chan struct{})
		in.startedAt, in.finishedAt, in.exitCode, in.oomKills, in.pausedFor = now, time.Time{}, 0, 0, 0
	}
	h.nextPID++
	if in.paused {
		in.pausedFor += now.Sub(in.pausedAt)
	}
	in.state, in.pid, in.paused = runtime.StateRunning, h.nextPID, false
	in.endsAt, in.endCode, in.termIgnored = time.Time{}, mem.EndCode, mem.TermIgnored
	if mem.Remaining >= 0 {
		in.endsAt = now.Add(mem.Remaining)
	}
	h.rewatch(in)
	h.settle(in)
	return nil
}

// RestoreSlotDisk implements runtime.DiskRestorer: a copy of the disk at from
// becomes the slot disk in diskDir, marked as made from base, for the next VM
// that starts with this DiskDir. It refuses (runtime.ErrRunning) while a VM of
// this host runs on that slot disk.
func (d *Driver) RestoreSlotDisk(ctx context.Context, diskDir, base, from string) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	h := d.host
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(OpRestoreSlotDisk, diskDir); err != nil {
		return err
	}
	return h.fail(h.restoreSlotDisk(diskDir, base, from))
}

func (h *Host) restoreSlotDisk(diskDir, base, from string) error {
	if fi, err := os.Stat(from); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: restore slot disk: %s is not a disk file", runtime.ErrInvalid, from)
	}
	for _, in := range h.instances {
		h.settle(in)
		if !in.exited() && in.spec.DiskDir != "" && filepath.Clean(in.spec.DiskDir) == filepath.Clean(diskDir) {
			return fmt.Errorf("restore slot disk %s: instance %q uses it: %w", diskDir, in.spec.ID, runtime.ErrRunning)
		}
	}
	files, err := readDisk(from)
	if err != nil {
		return fmt.Errorf("%w: restore slot disk: %w", runtime.ErrInvalid, err)
	}
	if err := os.MkdirAll(diskDir, 0o700); err != nil {
		return fmt.Errorf("restore slot disk: %w", err)
	}
	if err := writeAtomic(filepath.Join(diskDir, slotBaseFile), []byte(base)); err != nil {
		return fmt.Errorf("restore slot disk: %w", err)
	}
	return writeDisk(filepath.Join(diskDir, slotDiskFile), files)
}

// openSlotDisk returns the files of a starting disk VM's slot disk: those of
// DiskDir's disk when it was made from the spec's vm.disk; otherwise a new,
// empty one, and a disk made from another vm.disk is kept aside (renamed with
// the time), as the qemu driver does.
func (h *Host) openSlotDisk(spec runtime.InstanceSpec) (map[string][]byte, error) {
	files := map[string][]byte{}
	if spec.Tier != v1alpha1.TierVM || spec.DiskDir == "" || spec.VM == nil || spec.VM.Disk == nil {
		return files, nil
	}
	disk := filepath.Join(spec.DiskDir, slotDiskFile)
	if _, err := os.Stat(disk); err == nil {
		prev, err := os.ReadFile(filepath.Join(spec.DiskDir, slotBaseFile))
		if err == nil && string(prev) == spec.VM.Disk.Path {
			return readDisk(disk)
		}
		aside := filepath.Join(spec.DiskDir, fmt.Sprintf("disk-%s.qcow2", h.clock.Now().UTC().Format("20060102T150405Z")))
		if err := os.Rename(disk, aside); err != nil {
			return nil, fmt.Errorf("keep the old slot disk: %w", err)
		}
	}
	if err := os.MkdirAll(spec.DiskDir, 0o700); err != nil {
		return nil, fmt.Errorf("disk directory: %w", err)
	}
	if err := writeAtomic(filepath.Join(spec.DiskDir, slotBaseFile), []byte(spec.VM.Disk.Path)); err != nil {
		return nil, fmt.Errorf("slot disk: %w", err)
	}
	if err := writeDisk(disk, files); err != nil {
		return nil, fmt.Errorf("slot disk: %w", err)
	}
	return files, nil
}

// putDisk replaces the instance's disk with files, on its slot disk too.
func (in *instance) putDisk(files map[string][]byte) error {
	if err := in.syncDisk(files); err != nil {
		return err
	}
	in.files = files
	return nil
}

// syncDisk writes files to the instance's slot disk, if it has one: a disk
// VM's writes outlive it there.
func (in *instance) syncDisk(files map[string][]byte) error {
	if in.spec.Tier != v1alpha1.TierVM || in.spec.DiskDir == "" || in.spec.VM == nil || in.spec.VM.Disk == nil {
		return nil
	}
	return writeDisk(filepath.Join(in.spec.DiskDir, slotDiskFile), files)
}

// diskMagic is the first file of every disk archive the fake writes, so that
// readDisk tells its disks from other files.
const diskMagic = ".strata-fake-disk"

// writeDisk writes files to path as a disk archive (a tar of the files, after a
// marker), through a temporary file: a failed write leaves nothing at path.
func writeDisk(path string, files map[string][]byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = writeFiles(f, files)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

func writeFiles(f *os.File, files map[string][]byte) error {
	tw := tar.NewWriter(f)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: diskMagic, Mode: 0o600}); err != nil {
		return err
	}
	if err := writeEntries(tw, files); err != nil {
		return err
	}
	return tw.Close()
}

// readDisk reads a disk archive writeDisk wrote.
func readDisk(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	hdr, err := tar.NewReader(f).Next()
	f.Close()
	if err != nil || hdr.Name != diskMagic {
		return nil, fmt.Errorf("%s is not a disk of the fake driver", path)
	}
	files, err := readLayer(path)
	if err != nil {
		return nil, err
	}
	delete(files, "/"+diskMagic)
	return files, nil
}

// writeAtomic writes data to path through a temporary file.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
