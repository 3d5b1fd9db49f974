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

// diskNode is the block node of the instance's disk and the file it writes to.
func (r *record) diskNode() (node, file string, ok bool) {
	for _, a := range r.Args {
		if f, ok := strings.CutPrefix(a, "driver=file,filename="); ok {
			f, _, _ = strings.Cut(f, ",")
			return "disk0", f, true
		}
	}
	return "", "", false
}

// SnapshotDisk implements runtime.StateSaver with a backup job: QEMU copies
// the disk as it was when the job started into a standalone qcow2 at path
// (copy-before-write: a block the guest overwrites meanwhile is copied
// first), while the guest runs on, on the same files.
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
	wait, err := d.startBackup(ctx, r, path)
	if err != nil {
		return err
	}
	return wait(ctx)
}

// startBackup starts copying the instance's disk, as it is now, into a
// standalone qcow2 at path; wait waits for the copy's end and puts the file
// in place (a failed or cancelled copy leaves nothing at path).
func (d *Driver) startBackup(ctx context.Context, r *record, path string) (wait func(context.Context) error, err error) {
	node, _, ok := r.diskNode()
	if !ok {
		return nil, fmt.Errorf("%w: instance %q has no disk", runtime.ErrUnsupported, r.ID)
	}
	var nodes []struct {
		Name  string `json:"node-name"`
		Image struct {
			VirtualSize int64 `json:"virtual-size"`
		} `json:"image"`
	}
	if err := d.runQMP(ctx, r.ID, "query-named-block-nodes", map[string]any{"flat": true}, &nodes); err != nil {
		return nil, fmt.Errorf("instance %q: read the disk's size: %w", r.ID, err)
	}
	size := int64(0)
	for _, n := range nodes {
		if n.Name == node {
			size = n.Image.VirtualSize
		}
	}
	if size <= 0 {
		return nil, fmt.Errorf("instance %q: QEMU reports no size for disk node %s", r.ID, node)
	}
	tmp := path + ".tmp"
	if err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", tmp, strconv.FormatInt(size, 10)); err != nil {
		return nil, err
	}
	job := fmt.Sprintf("backup%d", time.Now().UnixNano())
	fail := func(err error) (func(context.Context) error, error) {
		_ = os.Remove(tmp)
		return nil, err
	}
	err = d.runQMP(ctx, r.ID, "blockdev-add", map[string]any{
		"driver": "qcow2", "node-name": job, "file": map[string]any{"driver": "file", "filename": tmp},
	}, nil)
	if err != nil {
		return fail(fmt.Errorf("instance %q: open the backup target: %w", r.ID, err))
	}
	cleanup := func() {
		_ = d.runQMP(context.WithoutCancel(ctx), r.ID, "blockdev-del", map[string]any{"node-name": job}, nil)
		_ = os.Remove(tmp)
	}
	err = d.runQMP(ctx, r.ID, "blockdev-backup", map[string]any{
		"job-id": job, "device": node, "target": job, "sync": "full", "auto-dismiss": false,
	}, nil)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("instance %q: start the disk backup: %w", r.ID, err)
	}
	return func(ctx context.Context) error {
		err := d.waitJob(ctx, r.ID, job)
		if err != nil {
			_ = d.runQMP(context.WithoutCancel(ctx), r.ID, "job-cancel", map[string]any{"id": job}, nil)
			_ = d.waitJob(context.WithoutCancel(ctx), r.ID, job)
			cleanup()
			return err
		}
		if err := d.runQMP(ctx, r.ID, "blockdev-del", map[string]any{"node-name": job}, nil); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("instance %q: close the disk backup: %w", r.ID, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			_ = os.Remove(tmp)
			return err
		}
		return nil
	}, nil
}

// waitJob waits for a block job to conclude, dismisses it and returns its error.
func (d *Driver) waitJob(ctx context.Context, id, job string) error {
	for {
		var jobs []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		if err := d.runQMP(ctx, id, "query-jobs", nil, &jobs); err != nil {
			return fmt.Errorf("instance %q: disk backup: %w", id, err)
		}
		found := false
		for _, j := range jobs {
			if j.ID != job {
				continue
			}
			found = true
			if j.Status == "concluded" || j.Status == "null" {
				_ = d.runQMP(ctx, id, "job-dismiss", map[string]any{"id": job}, nil)
				if j.Error != "" {
					return fmt.Errorf("instance %q: disk backup failed: %s", id, j.Error)
				}
				return nil
			}
		}
		if !found {
			return fmt.Errorf("instance %q: disk backup job %s vanished", id, job)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
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
		if err == nil {
			return
		}
		if cerr := d.runQMP(context.WithoutCancel(ctx), id, "cont", nil, nil); cerr != nil {
			err = fmt.Errorf("%w (and resuming the guest failed: %w)", err, cerr)
		}
	}()
	// The copy starts while the guest is stopped, so the disk and the memory are of
	// the same moment; it goes on (copy-before-write) after the guest runs again.
	wait, err := d.startBackup(ctx, r, saved.Disk)
	if err != nil {
		return runtime.SavedState{}, err
	}
	if err := d.migrate(ctx, id, "migrate", "exec:cat > "+shellQuote(saved.Memory)); err != nil {
		_ = wait(ctx)
		return runtime.SavedState{}, err
	}
	if err := d.runQMP(ctx, id, "cont", nil, nil); err != nil {
		_ = wait(ctx)
		return runtime.SavedState{}, fmt.Errorf("instance %q: resume after saving: %w", id, err)
	}
	if err := wait(ctx); err != nil {
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
// replaced by one that starts from the saved memory, on a copy of the saved
// disk put where the instance's disk was.
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
	// The saved disk replaces the file the instance writes to (a slot disk stays
	// the slot disk), as a standalone copy: the saved state stays untouched.
	_, file, _ := r.diskNode()
	tmp := file + ".restore"
	if err := d.qemuImg(ctx, "convert", "-O", "qcow2", s.Disk, tmp); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, file); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("instance %q: restore the disk: %w", id, err)
	}
	args := slices.Clone(r.Args)
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

func hasDisk(r *record) bool { _, _, ok := r.diskNode(); return ok }

// shellQuote quotes s for the shell QEMU runs exec: migrations with.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var _ runtime.StateSaver = (*Driver)(nil)
