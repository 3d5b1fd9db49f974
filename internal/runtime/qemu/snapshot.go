package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"strata.dev/strata/internal/runtime"
)

// Pause implements runtime.StateSaver.
func (d *Driver) Pause(ctx context.Context, id string) error {
	if _, err := d.running(id); err != nil {
		return err
	}
	return d.runQMP(ctx, id, "stop", nil, nil)
}

// Resume implements runtime.StateSaver.
func (d *Driver) Resume(ctx context.Context, id string) error {
	if _, err := d.running(id); err != nil {
		return err
	}
	return d.runQMP(ctx, id, "cont", nil, nil)
}

// running returns id's record when its QEMU runs.
func (d *Driver) running(id string) (*record, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	r, err := d.lockedRecord(id, nil)
	if err != nil {
		return nil, err
	}
	if r.Finished || r.PID == 0 {
		return nil, fmt.Errorf("%w: instance %q", runtime.ErrNotRunning, id)
	}
	return r, nil
}

// activeDisk is the node and file the instance writes to now.
func (r *record) activeDisk() (node, file string, ok bool) {
	if len(r.Layers) > 0 {
		return "disk" + strconv.Itoa(len(r.Layers)), r.Layers[len(r.Layers)-1], true
	}
	for _, a := range r.Args {
		if f, ok := strings.CutPrefix(a, "driver=file,filename="); ok {
			f, _, _ = strings.Cut(f, ",")
			return "disk0", f, true
		}
	}
	return "", "", false
}

// freeze makes the file the instance writes to read-only, moving its writes
// to a new overlay, and returns the frozen file. The caller holds id's lock.
func (d *Driver) freeze(ctx context.Context, r *record) (string, error) {
	node, file, ok := r.activeDisk()
	if !ok {
		return "", fmt.Errorf("%w: instance %q has no disk", runtime.ErrUnsupported, r.ID)
	}
	next := d.path(r.ID, fmt.Sprintf("disk-%d.qcow2", len(r.Layers)+1))
	err := d.runQMP(ctx, r.ID, "blockdev-snapshot-sync", map[string]any{
		"node-name": node, "snapshot-file": next, "snapshot-node-name": "disk" + strconv.Itoa(len(r.Layers)+1), "format": "qcow2",
	}, nil)
	if err != nil {
		return "", fmt.Errorf("instance %q: freeze the disk: %w", r.ID, err)
	}
	r.Layers = append(r.Layers, next)
	if err := d.writeRecord(r); err != nil {
		return "", err
	}
	return file, nil
}

// SnapshotDisk implements runtime.StateSaver.
func (d *Driver) SnapshotDisk(ctx context.Context, id, path string) error {
	if _, err := d.running(id); err != nil {
		return err
	}
	unlock := d.lockID(id)
	defer unlock()
	r, err := d.readRecord(id)
	if err != nil {
		return err
	}
	frozen, err := d.freeze(ctx, r)
	if err != nil {
		return err
	}
	return d.flatten(ctx, frozen, path)
}

// flatten copies a disk and its backing chain into one standalone qcow2.
func (d *Driver) flatten(ctx context.Context, from, to string) error {
	tmp := to + ".tmp"
	defer os.Remove(tmp)
	if err := d.qemuImg(ctx, "convert", "-U", "-O", "qcow2", from, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}

// SaveState implements runtime.StateSaver: the guest is paused, its disk
// frozen and its memory and devices written with QEMU's migration to
// dir/memory.state; then it runs on.
func (d *Driver) SaveState(ctx context.Context, id, dir string) (_ runtime.SavedState, err error) {
	if _, err := d.running(id); err != nil {
		return runtime.SavedState{}, err
	}
	unlock := d.lockID(id)
	defer unlock()
	r, err := d.readRecord(id)
	if err != nil {
		return runtime.SavedState{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return runtime.SavedState{}, err
	}
	saved := runtime.SavedState{Memory: filepath.Join(dir, "memory.state"), Disk: filepath.Join(dir, "disk.qcow2")}
	if err := d.runQMP(ctx, id, "stop", nil, nil); err != nil {
		return runtime.SavedState{}, err
	}
	defer func() {
		if cerr := d.runQMP(context.WithoutCancel(ctx), id, "cont", nil, nil); cerr != nil && err == nil {
			err = fmt.Errorf("instance %q: resume after saving: %w", id, cerr)
		}
	}()
	frozen, err := d.freeze(ctx, r)
	if err != nil {
		return runtime.SavedState{}, err
	}
	if err := d.migrate(ctx, id, "migrate", "exec:cat > "+shellQuote(saved.Memory)); err != nil {
		return runtime.SavedState{}, err
	}
	if err := d.flatten(ctx, frozen, saved.Disk); err != nil {
		return runtime.SavedState{}, err
	}
	return saved, nil
}

// migrate starts an outgoing or incoming migration and waits for its end.
func (d *Driver) migrate(ctx context.Context, id, command, uri string) error {
	if err := d.runQMP(ctx, id, command, map[string]any{"uri": uri}, nil); err != nil {
		return err
	}
	for {
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := d.runQMP(ctx, id, "query-migrate", nil, &st); err != nil {
			return err
		}
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("instance %q: %s %s: %s %s", id, command, uri, st.Status, st.ErrorDesc)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// RestoreState implements runtime.StateSaver: QEMU of the instance is
// replaced by one that starts from the saved memory and a new overlay on the
// saved disk.
func (d *Driver) RestoreState(ctx context.Context, id string, s runtime.SavedState) error {
	if err := d.check(); err != nil {
		return err
	}
	for _, f := range []string{s.Memory, s.Disk} {
		if err := regularFile(f); err != nil {
			return fmt.Errorf("%w: restore %q: %w", runtime.ErrInvalid, id, err)
		}
	}
	unlock := d.lockID(id)
	defer func() { unlock() }() // unlock changes below
	r, err := d.readRecord(id)
	if err != nil {
		return err
	}
	if r.Source != sourceImage && !hasDisk(r) {
		return fmt.Errorf("%w: instance %q has no disk to restore", runtime.ErrUnsupported, id)
	}
	// End the QEMU that runs now, if any.
	if d.alive(r) {
		r.Killed = true
		_ = syscall.Kill(r.PID, syscall.SIGKILL)
		if !waitGone(r.PID, 10*time.Second) {
			return fmt.Errorf("instance %q: QEMU pid %d did not end", id, r.PID)
		}
	}
	d.mu.Lock()
	done := d.children[id]
	agent := d.agents[id]
	delete(d.agents, id)
	d.mu.Unlock()
	if agent != nil {
		_ = agent.Close()
	}
	if done != nil {
		unlock() // the reaper needs the lock to finish
		<-done
		unlock = d.lockID(id)
		if r, err = d.readRecord(id); err != nil {
			return err
		}
	}
	overlay := d.path(id, fmt.Sprintf("restore-%d.qcow2", time.Now().UnixNano()))
	if err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", s.Disk, overlay); err != nil {
		return err
	}
	for _, l := range r.Layers {
		_ = os.Remove(l)
	}
	r.Layers = nil
	args := make([]string, 0, len(r.Args)+2)
	for _, a := range r.Args {
		if rest, ok := strings.CutPrefix(a, "driver=file,filename="); ok {
			_, opts, _ := strings.Cut(rest, ",")
			a = "driver=file,filename=" + overlay + "," + opts
		}
		args = append(args, a)
	}
	r.Args = append(slices.Clip(args), "-incoming", "defer")
	_ = os.Remove(d.path(id, exitFile))
	if _, err := d.launch(ctx, r); err != nil {
		return fmt.Errorf("instance %q: restore: %w", id, err)
	}
	r.Args = args
	if err := d.writeRecord(r); err != nil {
		return err
	}
	if err := d.migrate(ctx, id, "migrate-incoming", "exec:cat "+shellQuote(s.Memory)); err != nil {
		return err
	}
	if err := d.runQMP(ctx, id, "cont", nil, nil); err != nil {
		return fmt.Errorf("instance %q: resume the restored guest: %w", id, err)
	}
	return nil
}

func hasDisk(r *record) bool { _, _, ok := r.activeDisk(); return ok }

// shellQuote quotes s for the shell QEMU runs exec: migrations with.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var _ runtime.StateSaver = (*Driver)(nil)
