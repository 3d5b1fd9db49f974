package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"strata.dev/strata/internal/runtime"
)

// DefaultVirtiofsd is QEMU's own virtiofs daemon, as Debian 12 ships it.
const DefaultVirtiofsd = "/usr/lib/qemu/virtiofsd"

// sharedMemoryID names the memory backend of a node VM booted with
// NodeSpec.SharedMemory.
const sharedMemoryID = "mem"

// sharedMemoryObject is the -object argument of a guest RAM of mem bytes
// (0: DefaultMemoryBytes) in a memfd that virtiofsd may map.
func sharedMemoryObject(mem int64) string {
	if mem == 0 {
		mem = DefaultMemoryBytes
	}
	return "memory-backend-memfd,id=" + sharedMemoryID + ",size=" + strconv.FormatInt((mem+mib-1)/mib, 10) + "M,share=on"
}

// FS is a host directory to share into a node VM with virtiofs.
type FS struct {
	// ID names the device among the VM's devices (at most 20 characters of
	// an instance ID's); the guest mounts it by this tag (mount -t virtiofs
	// ID DIR).
	ID string
	// Dir is the directory shared, absolute: virtiofsd sees it as its root
	// and nothing outside it, and mounts made below it later (in the host's
	// mount namespace, on a shared mount) reach the guest too.
	Dir string
}

// AttachFS shares fs.Dir into running node VM vm: it starts a virtiofsd
// over it (detached, like QEMU, so that it outlives the daemon; it ends when
// QEMU lets go of it) and plugs a vhost-user-fs-pci device with tag fs.ID
// into the lowest free root port. The VM must have been booted with
// NodeSpec.SharedMemory.
func (d *Driver) AttachFS(ctx context.Context, vm string, fs FS) error {
	if err := d.check(); err != nil {
		return err
	}
	if err := checkDeviceID(vm, fs.ID); err != nil {
		return err
	}
	if !filepath.IsAbs(fs.Dir) {
		return fmt.Errorf("%w: node VM %q: shared directory %q: not an absolute path", runtime.ErrInvalid, vm, fs.Dir)
	}
	if fi, err := os.Stat(fs.Dir); err != nil {
		return fmt.Errorf("%w: node VM %q: shared directory: %w", runtime.ErrInvalid, vm, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("%w: node VM %q: shared directory %q is not a directory", runtime.ErrInvalid, vm, fs.Dir)
	}
	unlock := d.lockID(vm)
	r, err := d.runningNode(vm)
	unlock()
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(r.Args, func(a string) bool {
		return strings.HasPrefix(a, "memory-backend-memfd,") && strings.HasSuffix(a, ",share=on")
	}) {
		return fmt.Errorf("%w: node VM %q was booted without shared memory, which virtiofs needs; boot node VMs with NodeSpec.SharedMemory", runtime.ErrUnsupported, vm)
	}
	dev := nodeDevice{Kind: kindFS, ID: fs.ID, Path: fs.Dir}
	return d.plug(ctx, vm, dev, func(m *monitor, dev nodeDevice) (err error) {
		if err := m.clearLeftover(ctx, dev); err != nil {
			return err
		}
		pid, start, err := d.startVirtiofsd(ctx, vm, dev)
		if err != nil {
			return err
		}
		defer func() {
			if err != nil {
				stopVirtiofsd(pid, start)
				_ = os.Remove(d.fsSocket(vm, dev.ID))
			}
		}()
		// The record names the process before QEMU connects to it, so that
		// a detach (or the VM's removal) after a crash half-way ends it.
		if err := d.recordFSProcess(vm, dev.ID, pid, start); err != nil {
			return err
		}
		if _, err := m.execute(ctx, "chardev-add", map[string]any{
			"id": dev.chardevID(),
			"backend": map[string]any{"type": "socket", "data": map[string]any{
				"addr":   map[string]any{"type": "unix", "data": map[string]any{"path": d.fsSocket(vm, dev.ID)}},
				"server": false,
			}},
		}); err != nil {
			return err
		}
		if _, err := m.execute(ctx, "device_add", map[string]any{
			"driver": "vhost-user-fs-pci", "id": dev.qdevID(), "chardev": dev.chardevID(),
			"tag": dev.ID, "bus": rootPort(dev.Port),
		}); err != nil {
			m.undo("chardev-remove", map[string]any{"id": dev.chardevID()})
			return err
		}
		return nil
	})
}

// DetachFS unplugs shared directory id from node VM vm, ends its virtiofsd
// and removes its socket. The guest must have unmounted it.
func (d *Driver) DetachFS(ctx context.Context, vm, id string) error {
	return d.unplug(ctx, vm, id, kindFS)
}

// Virtiofsd is the virtiofs daemon AttachFS runs.
func (d *Driver) Virtiofsd() string { return d.cfg.Virtiofsd }

// fsSocket is the vhost-user socket of shared directory id of node VM vm.
func (d *Driver) fsSocket(vm, id string) string { return d.path(vm, "fs-"+id+".sock") }

// startVirtiofsd starts the virtiofsd of dev in a session of its own and
// waits until its socket is there.
func (d *Driver) startVirtiofsd(ctx context.Context, vm string, dev nodeDevice) (int, uint64, error) {
	sock := d.fsSocket(vm, dev.ID)
	_ = os.Remove(sock)
	logPath := d.path(vm, "fs-"+dev.ID+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, 0, err
	}
	defer logf.Close()
	// It outlives the daemon, as QEMU does: no CommandContext. The
	// namespace sandbox pivots into Dir in a mount namespace of its own, a
	// slave of the host's: virtiofsd sees Dir and what is mounted below it,
	// nothing else of the host.
	cmd := exec.Command(d.cfg.Virtiofsd, //nolint:noctx,gosec // see above; the arguments are strata's
		"--socket-path="+sock, "-o", "source="+dev.Path, "-o", "cache=auto",
		"-o", "sandbox=namespace", "-o", "log_level=warn")
	cmd.Dir = d.dir(vm)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("start %s: %w", d.cfg.Virtiofsd, err)
	}
	pid := cmd.Process.Pid
	start, _ := procStart(pid)
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		if _, err := os.Stat(sock); err == nil {
			return pid, start, nil
		}
		select {
		case <-exited:
			return 0, 0, fmt.Errorf("virtiofsd for %s exited at start: %s", dev.Path, tail(logPath))
		case <-deadline.C:
			stopVirtiofsd(pid, start)
			return 0, 0, fmt.Errorf("virtiofsd for %s made no socket within 10 s: %s", dev.Path, tail(logPath))
		case <-ctx.Done():
			stopVirtiofsd(pid, start)
			return 0, 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// recordFSProcess notes the virtiofsd of device id in vm's devices.json.
// The caller (plug) holds vm's lock.
func (d *Driver) recordFSProcess(vm, id string, pid int, start uint64) error {
	ds, err := d.readDevices(vm)
	if err != nil {
		return err
	}
	i, ok := ds.find(id)
	if !ok {
		return fmt.Errorf("node VM %q: no record of shared directory %q", vm, id)
	}
	ds.Devices[i].PID, ds.Devices[i].PIDStart = pid, start
	return d.writeDevices(vm, ds)
}

// stopVirtiofsd ends the virtiofsd pid (started at start, in clock ticks
// since boot) unless it has ended already.
func stopVirtiofsd(pid int, start uint64) {
	if pid <= 0 {
		return
	}
	if s, ok := procStart(pid); !ok || s != start {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if !waitGone(pid, 5*time.Second) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, 5*time.Second)
	}
}

// endSharedDirs ends the virtiofsd processes of node VM id's shared
// directories that still run (QEMU has ended: each ends by itself once
// QEMU lets go of it, so this is for one QEMU never connected to). The
// caller holds the instance's lock.
func (d *Driver) endSharedDirs(id string) error {
	ds, err := d.readDevices(id)
	if err != nil {
		return err
	}
	for _, n := range ds.Devices {
		if n.Kind == kindFS {
			stopVirtiofsd(n.PID, n.PIDStart)
		}
	}
	return nil
}
