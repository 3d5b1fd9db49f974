package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/mount"
	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/runtime"
)

// A view is an image's root filesystem mounted read-only for WithImageRoot.
// Its parts are all named by the view's key, viewPrefix and random hex:
//
//   - a containerd lease with the key as ID, which keeps the snapshot from
//     containerd's garbage collector;
//   - a View snapshot (read-only, in the driver's snapshotter) with the key,
//     whose parent is the image's chain ID;
//   - the mount point StateDir/views/KEY, where the snapshot is mounted;
//   - the lock file StateDir/views/KEY.lock, which the process that uses the
//     view holds locked (flock) for as long as it does.
//
// The lock file exists, locked, before the lease is made and goes only after
// the lease is deleted. A view whose lock can be taken, or that has no lock
// file, is therefore nobody's: a strata process crashed while using it. New
// removes such views (removeStaleViews); the kernel releases a dead
// process's locks, so this holds whatever the process IDs.
type view struct {
	d    *Driver
	key  string
	root string   // the mount point
	lock *os.File // the locked lock file; nil while a stale view is removed
}

// viewPrefix starts the key of every view. Its '_' cannot occur in an
// instance ID (runtime.ValidID), so a view's snapshot never shares a key
// with an instance's.
const viewPrefix = "strata-view_"

// labelViewOf on a view's lease names the image it shows.
const labelViewOf = runtime.LabelDriverPrefix + "view-of"

// Unmounting a busy view is retried unmountTries times, unmountBackoff apart,
// before it is detached lazily.
const (
	unmountTries   = 40
	unmountBackoff = 50 * time.Millisecond
)

// viewsDir holds the views' mount points and lock files.
func (d *Driver) viewsDir() string { return filepath.Join(d.cfg.StateDir, "views") }

func (d *Driver) viewFor(key string) *view {
	return &view{d: d, key: key, root: filepath.Join(d.viewsDir(), key)}
}

func (v *view) lockPath() string { return v.root + ".lock" }

// openView makes and mounts a new view whose parent is the committed
// snapshot chainID; image names it for the lease's label. On failure it
// leaves nothing behind.
func (d *Driver) openView(ctx context.Context, chainID, image string) (*view, error) {
	if err := os.MkdirAll(d.viewsDir(), 0o700); err != nil {
		return nil, fmt.Errorf("view: %w", err)
	}
	v, err := d.lockNewView()
	if err != nil {
		return nil, err
	}
	if err := v.setUp(ctx, chainID, image); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if cerr := v.close(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", cerr))
		}
		return nil, fmt.Errorf("view %s: %w", v.key, err)
	}
	return v, nil
}

// lockNewView picks a fresh key and creates and locks its lock file. A
// removeStaleViews running at that moment may take the new file for a stale
// one (between its creation and its locking) and delete it: then the locked
// file is no longer the one at the path, and another key is tried.
func (d *Driver) lockNewView() (*view, error) {
	for range 3 {
		v := d.viewFor(viewPrefix + randomHex(16))
		f, err := os.OpenFile(v.lockPath(), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("view lock: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("view lock %s: %w", v.lockPath(), err)
		}
		if sameFile(f, v.lockPath()) {
			v.lock = f
			return v, nil
		}
		f.Close()
	}
	return nil, errors.New("view lock: the new lock file kept disappearing (is another strata removing views in " + d.viewsDir() + "?)")
}

// sameFile reports whether the open file f is still the file at path.
func sameFile(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Stat(path)
	if err != nil {
		return false
	}
	return os.SameFile(fi, pi)
}

// setUp makes the lease, the snapshot and the mount.
func (v *view) setUp(ctx context.Context, chainID, image string) error {
	if _, err := v.d.client.LeasesService().Create(ctx,
		leases.WithID(v.key), leases.WithLabels(map[string]string{labelViewOf: image})); err != nil {
		return fmt.Errorf("create lease: %w", err)
	}
	sn := v.d.client.SnapshotService(v.d.cfg.Snapshotter)
	mounts, err := sn.View(leases.WithLease(ctx, v.key), v.key, chainID)
	if err != nil {
		return fmt.Errorf("view snapshot %s: %w", chainID, err)
	}
	if err := os.Mkdir(v.root, 0o700); err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	if err := mount.All(readOnly(mounts), v.root); err != nil {
		return fmt.Errorf("mount at %s: %w", v.root, err)
	}
	return nil
}

// readOnly returns mounts with "ro" in place of any "rw" option: a view's
// mounts are read-only already, this makes sure of it.
func readOnly(mounts []mount.Mount) []mount.Mount {
	out := make([]mount.Mount, len(mounts))
	for i, m := range mounts {
		opts := make([]string, 0, len(m.Options)+1)
		for _, o := range m.Options {
			if o != "rw" && o != "ro" {
				opts = append(opts, o)
			}
		}
		opts = append(opts, "ro")
		m.Options = opts
		out[i] = m
	}
	return out
}

// close removes the view and releases its lock.
func (v *view) close(ctx context.Context) error {
	err := v.remove(ctx)
	if v.lock != nil {
		v.lock.Close()
		v.lock = nil
	}
	return err
}

// remove undoes the view in the reverse order of its making: mount, snapshot,
// lease, mount point, lock file. Parts already gone are not an error. When a
// step fails, the parts after it (the lock file last) stay, so that a later
// removeStaleViews finds the view and tries again.
func (v *view) remove(ctx context.Context) error {
	if err := v.unmount(); err != nil {
		return err
	}
	sn := v.d.client.SnapshotService(v.d.cfg.Snapshotter)
	if err := sn.Remove(ctx, v.key); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove view snapshot %s: %w", v.key, err)
	}
	if err := v.d.client.LeasesService().Delete(ctx, leases.Lease{ID: v.key}); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete view lease %s: %w", v.key, err)
	}
	// os.Remove, never RemoveAll: if something were still mounted there, its
	// files would not be deleted.
	if err := os.Remove(v.root); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove view mount point: %w", err)
	}
	if err := os.Remove(v.lockPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove view lock: %w", err)
	}
	return nil
}

// unmount unmounts the view's root until nothing is mounted there. While
// the mount is busy (a process still has a file open in it) it retries; at
// the end it detaches the mount lazily, which the kernel completes once the
// last user is gone.
func (v *view) unmount() error {
	for try := 1; ; try++ {
		err := unix.Unmount(v.root, unix.UMOUNT_NOFOLLOW)
		switch {
		case err == nil:
			// Unmounted; look again in case something is stacked there.
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil // not (or no longer) a mount point
		case errors.Is(err, unix.EBUSY) && try < unmountTries:
			time.Sleep(unmountBackoff)
		case errors.Is(err, unix.EBUSY):
			v.d.log.Warn("image view still busy; detaching it lazily", "view", v.key, "root", v.root)
			if err := unix.Unmount(v.root, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount view %s: %w", v.root, err)
			}
		default:
			return fmt.Errorf("unmount view %s: %w", v.root, err)
		}
	}
}

// removeStaleViews removes the views that no process uses (see view): those
// a crashed strata left behind. It logs what it cannot remove; the next New
// tries again.
func (d *Driver) removeStaleViews(ctx context.Context) {
	keys, err := d.viewKeys(ctx)
	if err != nil {
		d.log.Warn("looking for stale image views", "err", err)
	}
	for _, key := range keys {
		removed, err := d.removeViewIfStale(ctx, key)
		switch {
		case err != nil:
			d.log.Warn("removing a stale image view", "view", key, "err", err)
		case removed:
			d.log.Info("stale image view removed", "view", key)
		}
	}
}

// viewKeys lists the keys of the views that have a lease in containerd or
// a file in the views directory.
func (d *Driver) viewKeys(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	var keys []string
	add := func(key string) {
		if strings.HasPrefix(key, viewPrefix) && !seen[key] {
			seen[key] = true
			keys = append(keys, key)
		}
	}
	var errs []error
	ls, err := d.client.LeasesService().List(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("list leases: %w", err))
	}
	for _, l := range ls {
		add(l.ID)
	}
	entries, err := os.ReadDir(d.viewsDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		add(strings.TrimSuffix(e.Name(), ".lock"))
	}
	return keys, errors.Join(errs...)
}

// removeViewIfStale removes the view key unless a process holds its lock.
func (d *Driver) removeViewIfStale(ctx context.Context, key string) (removed bool, err error) {
	v := d.viewFor(key)
	f, err := os.OpenFile(v.lockPath(), os.O_RDWR, 0)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// No lock file: nobody uses the view.
	case err != nil:
		return false, fmt.Errorf("view lock: %w", err)
	default:
		defer f.Close()
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return false, nil // in use
		}
		if err != nil {
			return false, fmt.Errorf("view lock: %w", err)
		}
	}
	if err := v.remove(ctx); err != nil {
		return false, err
	}
	return true, nil
}
