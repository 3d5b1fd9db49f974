package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
)

// RootWait bounds the wait for the root device to appear.
const RootWait = 5 * time.Second

type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

const (
	nosuid = unix.MS_NOSUID
	nodev  = unix.MS_NODEV
	noexec = unix.MS_NOEXEC
)

// earlyMounts are the init's own: the initramfs has only the directories.
var earlyMounts = []mount{
	{"proc", "/proc", "proc", nosuid | nodev | noexec, ""},
	{"sysfs", "/sys", "sysfs", nosuid | nodev | noexec, ""},
	{"devtmpfs", "/dev", "devtmpfs", nosuid, "mode=0755"},
	{"tmpfs", "/run", "tmpfs", nosuid | nodev, "mode=0755"},
}

// rootMounts go inside the root filesystem, in this order.
var rootMounts = []mount{
	{"proc", "proc", "proc", nosuid | nodev | noexec, ""},
	{"sysfs", "sys", "sysfs", nosuid | nodev | noexec, ""},
	{"devtmpfs", "dev", "devtmpfs", nosuid, "mode=0755"},
	{"devpts", "dev/pts", "devpts", nosuid | noexec, "newinstance,ptmxmode=0666,mode=0620"},
	{"tmpfs", "dev/shm", "tmpfs", nosuid | nodev, "mode=1777"},
}

// doMount mounts m under root ("" for the init's own), making the mount
// point when it is missing. A target already mounted (EBUSY) is fine.
func doMount(root string, m mount) error {
	target := filepath.Join("/", root, m.target)
	if err := os.MkdirAll(target, 0o755); err != nil { //nolint:gosec // G301: mount points of a root filesystem are world-readable
		return fmt.Errorf("mount %s: %w", target, err)
	}
	err := unix.Mount(m.source, target, m.fstype, m.flags, m.data)
	if err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount %s on %s: %w", m.fstype, target, err)
	}
	return nil
}

func mountEarly() error {
	for _, m := range earlyMounts {
		if err := doMount("", m); err != nil {
			return err
		}
	}
	return nil
}

// mountRoot waits for the root device, mounts it at guest.NewRoot, and
// mounts the kernel's filesystems inside it.
func mountRoot(r guest.RootFS) error {
	if err := waitFor(r.Device, RootWait); err != nil {
		return fmt.Errorf("root device %s did not appear within %s (is the disk attached as virtio-blk?)", r.Device, RootWait)
	}
	if err := os.MkdirAll(guest.NewRoot, 0o755); err != nil { //nolint:gosec // G301: the mount point of the root filesystem
		return err
	}
	if err := unix.Mount(r.Device, guest.NewRoot, r.FSType, 0, ""); err != nil {
		return fmt.Errorf("mount root %s (%s) on %s: %w", r.Device, r.FSType, guest.NewRoot, err)
	}
	for _, m := range rootMounts {
		if err := doMount(guest.NewRoot, m); err != nil {
			return err
		}
	}
	tmp := filepath.Join(guest.NewRoot, "tmp")
	if empty, err := isEmptyDir(tmp); err != nil || !empty {
		return err // an image with files in /tmp keeps them
	}
	return doMount(guest.NewRoot, mount{"tmpfs", "tmp", "tmpfs", nosuid | nodev, "mode=1777"})
}

// isEmptyDir reports whether dir is missing or an empty directory. A /tmp
// that is a symlink or a file is not touched.
func isEmptyDir(dir string) (bool, error) {
	st, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil || !st.IsDir() {
		return false, err
	}
	entries, err := os.ReadDir(dir)
	return len(entries) == 0, err
}

// waitFor polls until path exists or timeout has passed.
func waitFor(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := os.Stat(path)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// unmountRoot flushes the root filesystem for power-off: it detaches the
// mounts inside it and remounts it read-only. It is best effort: sync has
// already written the data.
func unmountRoot() {
	for i := len(rootMounts) - 1; i >= 0; i-- {
		_ = unix.Unmount(filepath.Join(guest.NewRoot, rootMounts[i].target), unix.MNT_DETACH)
	}
	_ = unix.Unmount(filepath.Join(guest.NewRoot, "tmp"), unix.MNT_DETACH)
	_ = unix.Mount("", guest.NewRoot, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
}
