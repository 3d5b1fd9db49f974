package nodevm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
)

// shareID is the device ID, and the guest's virtiofs tag, of a node VM's
// share: the one directory the host shares into it, under which each
// instance's mounts appear.
const shareID = "strata-mounts"

// How an instance's mounts reach its container. Each node VM has one share,
// StateDir/shares/<vm>: a directory bind-mounted onto itself and made a
// shared mount, plugged into the VM with one virtiofsd (qemu's AttachFS) by
// the first Start with mounts. Each instance's mounts are bind mounts on the
// host at <share>/<instance>/<i> of its HostPath (remounted read-only for a
// read-only mount), made before the container is created; they propagate
// into virtiofsd's mount namespace (a slave of the share), so the running
// virtiofsd serves them. The guest mounts the tag once and bind-mounts each
// <instance>/<i> into the container at its Path. The data stays in the host
// directory, so snapshots and backups read it there as for a container on
// the host.

// shareDir is node VM vm's share on the host.
func (d *Driver) shareDir(vm string) string { return filepath.Join(d.cfg.StateDir, "shares", vm) }

// checkMounts refuses mounts whose host path is not there.
func checkMounts(spec runtime.InstanceSpec) error {
	for i, m := range spec.Mounts {
		if _, err := os.Stat(m.HostPath); err != nil {
			return fmt.Errorf("%w: instance %q: mounts[%d].hostPath: %w", runtime.ErrInvalid, spec.ID, i, err)
		}
	}
	return nil
}

// shareMounts makes spec's mounts visible in node VM vm's share (plugging
// the share in first when vm has none) and returns them as the guest's
// container mounts. On failure it undoes what it made.
func (d *Driver) shareMounts(ctx context.Context, vm string, spec runtime.InstanceSpec) (_ []guest.ContainerMount, err error) {
	if len(spec.Mounts) == 0 {
		return nil, nil
	}
	if err := d.ensureShare(ctx, vm); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if uerr := d.unshareInstance(vm, spec.ID); uerr != nil {
				d.log.Warn("nodevm driver: clean up a failed start's mounts", "id", spec.ID, "vm", vm, "err", uerr)
			}
		}
	}()
	// A Start that ended half-way (the daemon killed) may have left binds of
	// this ID: the instance has no record, so they are nobody's.
	if err := d.unshareInstance(vm, spec.ID); err != nil {
		return nil, fmt.Errorf("instance %q: binds an earlier start left: %w", spec.ID, err)
	}
	dir := filepath.Join(d.shareDir(vm), spec.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	out := make([]guest.ContainerMount, 0, len(spec.Mounts))
	for i, m := range spec.Mounts {
		target := filepath.Join(dir, strconv.Itoa(i))
		if err := bindMount(m.HostPath, target, m.ReadOnly); err != nil {
			return nil, fmt.Errorf("instance %q: mounts[%d] (%s): %w", spec.ID, i, m.HostPath, err)
		}
		out = append(out, guest.ContainerMount{
			Tag: shareID, Source: spec.ID + "/" + strconv.Itoa(i), Path: m.Path, ReadOnly: m.ReadOnly,
			WaitMillis: (d.bootTimeout() / 4).Milliseconds(),
		})
	}
	return out, nil
}

// ensureShare makes node VM vm's share a shared mount of its own and plugs
// it into vm unless vm holds it already.
func (d *Driver) ensureShare(ctx context.Context, vm string) error {
	unlock := lock("vm/" + vm)
	defer unlock()
	dir := d.shareDir(vm)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	mounted, err := mountPoints(dir)
	if err != nil {
		return err
	}
	if !slices.Contains(mounted, dir) {
		// Its own mount, shared: mounts made below it later propagate into
		// virtiofsd's mount namespace, a slave of it.
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("node VM %s: share %s: %w", vm, dir, err)
		}
		if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
			return fmt.Errorf("node VM %s: share %s: make it a shared mount: %w", vm, dir, err)
		}
	}
	devs, err := d.cfg.QEMU.NodeDevices(vm)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(devs, func(n qemu.NodeDevice) bool { return n.ID == shareID }) {
		return nil
	}
	if err := d.cfg.QEMU.AttachFS(ctx, vm, qemu.FS{ID: shareID, Dir: dir}); err != nil {
		return fmt.Errorf("node VM %s: share the instances' mounts: %w", vm, err)
	}
	return nil
}

// bindMount binds host path src onto target (made as an empty directory or
// file, like src), read-only when ro.
func bindMount(src, target string, ro bool) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		err = os.Mkdir(target, 0o700)
	} else {
		var f *os.File
		if f, err = os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
			err = f.Close()
		}
	}
	if err != nil {
		return err
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		_ = os.Remove(target)
		return fmt.Errorf("bind it into the node VM's share: %w", err)
	}
	if ro {
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			_ = os.Remove(target)
			return fmt.Errorf("make its bind read-only: %w", err)
		}
	}
	return nil
}

// unshareInstance removes instance id's mounts from node VM vm's share: it
// unmounts every mount below <share>/<id> and removes what is left there,
// one entry at a time (never a recursive removal, which would reach into a
// volume still mounted).
func (d *Driver) unshareInstance(vm, id string) error {
	return unmountTree(filepath.Join(d.shareDir(vm), id))
}

// removeShare removes node VM vm's share once the VM is gone: the mounts
// below it (of instances never removed), its own mount and the directory.
func (d *Driver) removeShare(vm string) error {
	return unmountTree(d.shareDir(vm))
}

// unmountTree unmounts dir and every mount below it, deepest first, then
// removes the tree entry by entry; a missing dir is not an error.
func unmountTree(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	mounted, err := mountPoints(dir)
	if err != nil {
		return err
	}
	// Deepest first; a path mounted twice is unmounted as often.
	slices.SortFunc(mounted, func(a, b string) int { return len(b) - len(a) })
	for _, m := range mounted {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	if left, err := mountPoints(dir); err != nil || len(left) > 0 {
		return fmt.Errorf("%s: still mounted after unmounting: %v %w", dir, left, err)
	}
	return removeTree(dir)
}

// removeTree removes dir and what it holds, entry by entry, unless
// something is mounted at or below it (a bind of the same file system has
// the same device number, so only the mount table tells).
func removeTree(dir string) error {
	mounted, err := mountPoints(dir)
	if err != nil {
		return err
	}
	if len(mounted) > 0 {
		return fmt.Errorf("%s: still mounted (%s); left in place", dir, strings.Join(mounted, ", "))
	}
	return removeEntries(dir)
}

func removeEntries(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := removeEntries(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return os.Remove(dir)
}

// mountPoints lists the mount points of the process's mount namespace that
// are dir or below it.
func mountPoints(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountinfo(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	return out, sc.Err()
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
