package netseg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// createNetNS makes a new, empty network namespace and bind-mounts it on
// path (a new file), as `ip netns add` does. The namespace lives as long as
// the mount (or a process inside it).
func createNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if err != nil {
		return fmt.Errorf("netns file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("netns file: %w", err)
	}
	errc := make(chan error, 1)
	go func() {
		// The thread moves to the new namespace and never comes back: it
		// stays locked and ends with this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind-mount network namespace on %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return errors.Join(err, os.Remove(path))
	}
	return nil
}

// removeNetNS unmounts and deletes the namespace file at path. A file that
// is missing or not mounted is not an error.
func removeNetNS(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("network namespace: %w", err)
	}
	return nil
}

// isNetNSMount reports whether path is a mounted namespace (nsfs) rather
// than a plain file or nothing.
func isNetNSMount(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// openNetNS opens the namespace mounted at path; the caller closes it.
func openNetNS(path string) (netns.NsHandle, error) {
	if !isNetNSMount(path) {
		return netns.None(), fmt.Errorf("%s is not a mounted network namespace", path)
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return netns.None(), fmt.Errorf("open network namespace: %w", err)
	}
	return ns, nil
}
