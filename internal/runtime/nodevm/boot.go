package nodevm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
)

// ensureVM returns once node VM id of class answers through its guest
// agent, booting it with shape when it does not run (or has ended). A node
// VM that this call booted and that does not come up is stopped and
// removed, so that the class's next Start boots a new one; the error says
// why, with the last lines of its console.
func (d *Driver) ensureVM(ctx context.Context, class, id string, shape Shape) error {
	unlock := lock("vm/" + id)
	defer unlock()
	st, err := d.cfg.QEMU.Status(ctx, id)
	switch {
	case err == nil && st.State == runtime.StateRunning:
		if d.wasUp(id, st) {
			return nil
		}
		// Booted by a Driver value that did not see it come up: wait for it
		// as for a new one, and discard it when it does not come up unless
		// an instance is recorded in it.
		return d.waitUp(ctx, id, class, !d.holds(id))
	case err == nil:
		// It has ended: what ran in it is gone (Status of its instances says so).
		if err := d.cfg.QEMU.Remove(ctx, id); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			return fmt.Errorf("node VM %s of class %q ended; remove it: %w", id, class, err)
		}
	case !errors.Is(err, runtime.ErrNotFound):
		return err
	}
	if err := d.boot(ctx, id, class, shape); err != nil {
		return err
	}
	return d.waitUp(ctx, id, class, true)
}

// boot starts node VM id of class with shape; it returns once QEMU runs, before the
// guest has booted.
func (d *Driver) boot(ctx context.Context, id, class string, shape Shape) error {
	_ = os.Remove(d.upPath(id))
	initrd, disks, err := d.nodeInitrd(ctx, id)
	if err != nil {
		return fmt.Errorf("node VM %s of class %q: %w", id, class, err)
	}
	defer os.Remove(initrd)
	labels := shapeLabels(shape)
	labels[LabelClass] = class
	labels[LabelOwner] = d.owner()
	console := d.consolePath(id)
	// The console of an earlier VM of the class is of no use to this one's
	// errors.
	_ = os.Remove(console)
	_, err = d.cfg.QEMU.StartNode(ctx, qemu.NodeSpec{
		ID: id, CPUMilli: shape.CPUMilli, MemoryBytes: shape.MemoryBytes,
		Initrd: initrd, Disks: disks, Ports: d.cfg.Ports, LogPath: console, Labels: labels, Cmdline: d.cmdline,
		SharedMemory: true, // for the share of the instances' mounts (virtiofs)
	})
	if err != nil {
		return fmt.Errorf("boot node VM %s of class %q: %w", id, class, err)
	}
	return nil
}

// bootTimeout is how long a node VM may take to boot to its agent.
func (d *Driver) bootTimeout() time.Duration {
	if d.cfg.BootTimeout > 0 {
		return d.cfg.BootTimeout
	}
	return d.cfg.QEMU.ReadyTimeout()
}

// waitUp waits until the guest agent of node VM id answers, for at most
// bootTimeout. When it does not (the VM ended, or stayed silent), the error
// carries the console's last lines; a VM this value booted (discard) is
// then stopped and removed. The caller holds the VM's lock.
func (d *Driver) waitUp(ctx context.Context, id, class string, discard bool) error {
	began := time.Now()
	timeout := d.bootTimeout()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	for {
		if _, err = d.cfg.QEMU.NodeAgent(wctx, id); err == nil {
			break
		}
		if ctx.Err() != nil {
			// The caller gave up, not the VM: it boots on, and the next
			// Start waits for it again.
			return ctx.Err()
		}
		st, serr := d.cfg.QEMU.Status(context.WithoutCancel(ctx), id)
		ended := vmGone(err) || serr == nil && st.State != runtime.StateRunning
		if ended || wctx.Err() != nil {
			why := fmt.Sprintf("its guest agent did not answer within %v (%s)", timeout.Round(time.Second), d.accelNote())
			if ended {
				why = "it ended while it booted"
				if st.Message != "" {
					why += " (" + st.Message + ")"
				}
			}
			err = fmt.Errorf("node VM %s of class %q did not come up: %s; its console (%s) ends: %s", id, class, why, d.consolePath(id), consoleTail(d.consolePath(id), consoleLines))
			if discard {
				d.discard(ctx, id)
				err = fmt.Errorf("%w; the VM is removed, and the class's next start boots a new one", err)
			}
			return err
		}
		// QEMU has not opened the agent's socket yet, or dropped a
		// connection: dial again.
		select {
		case <-wctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	st, err := d.cfg.QEMU.Status(ctx, id)
	if err != nil {
		return err
	}
	if err := os.WriteFile(d.upPath(id), []byte(st.StartedAt.Format(time.RFC3339Nano)), 0o600); err != nil {
		return err
	}
	d.log.Info("nodevm driver: node VM up", "vm", id, "class", class, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// accelNote names the accelerator the node VMs run under.
func (d *Driver) accelNote() string {
	if d.cfg.QEMU.Accel() == "kvm" {
		return "KVM"
	}
	return "TCG, software emulation"
}

// discard stops and removes node VM id, which did not come up.
func (d *Driver) discard(ctx context.Context, id string) {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := d.cfg.QEMU.Stop(c, id, 0); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		d.log.Warn("nodevm driver: stop a node VM that did not come up", "vm", id, "err", err)
	}
	if err := d.cfg.QEMU.Remove(c, id); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		d.log.Warn("nodevm driver: remove a node VM that did not come up", "vm", id, "err", err)
	}
	_ = os.Remove(d.upPath(id))
}

// holds reports whether an instance that has not ended is recorded in
// node VM id.
func (d *Driver) holds(id string) bool {
	ids, err := d.ids()
	if err != nil {
		return true
	}
	for _, i := range ids {
		if r, err := d.readRecord(i); err == nil && r.VM == id && !r.Finished {
			return true
		}
	}
	return false
}

// upPath is the file that records that node VM id came up: the start time
// of the QEMU process whose guest agent answered.
func (d *Driver) upPath(id string) string { return filepath.Join(d.nodesDir(), id+".up") }

// consolePath is node VM id's serial console log.
func (d *Driver) consolePath(id string) string { return filepath.Join(d.nodesDir(), id+".log") }

// wasUp reports whether the running node VM st (id) has come up: its guest
// agent answered since its QEMU started.
func (d *Driver) wasUp(id string, st runtime.Status) bool {
	data, err := os.ReadFile(d.upPath(id))
	if err != nil {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, string(data))
	return err == nil && t.Equal(st.StartedAt)
}

// consoleLines is how many of a console's last lines an error quotes.
const consoleLines = 6

// consoleTail returns the last n lines of the console log at path that hold
// text, without terminal control sequences, quoted and joined with " / ".
// The kernel's last panic line comes first when the last lines are its
// stack trace.
func consoleTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	defer f.Close()
	const most = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > most {
		_, _ = f.Seek(fi.Size()-most, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	var lines []string
	for _, l := range bytes.Split(data, []byte("\n")) {
		if s := printable(l); s != "" {
			lines = append(lines, s)
		}
	}
	if len(lines) == 0 {
		return "(nothing yet)"
	}
	panicAt := -1
	for i, l := range lines {
		if strings.Contains(l, "Kernel panic") {
			panicAt = i
		}
	}
	first := max(0, len(lines)-n)
	if panicAt >= 0 && panicAt < first {
		lines = append([]string{lines[panicAt], "..."}, lines[first:]...)
	} else {
		lines = lines[first:]
	}
	for i, l := range lines {
		if len(l) > 200 {
			l = l[:200] + "..."
		}
		lines[i] = fmt.Sprintf("%q", l)
	}
	return strings.Join(lines, " / ")
}

// printable is line without terminal escape sequences and control
// characters, trimmed.
func printable(line []byte) string {
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == 0x1b:
			// ESC [ parameters final-byte, or ESC and one byte.
			if i+1 < len(line) && line[i+1] == '[' {
				i += 2
				for i < len(line) && (line[i] < 0x40 || line[i] > 0x7e) {
					i++
				}
			} else {
				i++
			}
		case c == '\t':
			b.WriteByte(' ')
		case c < 0x20 || c == 0x7f:
		default:
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(b.String())
}
