package initproc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
)

// nodeNetNS holds the containers' network namespaces, one file each (a bind
// mount of the namespace), on the /run tmpfs.
const nodeNetNS = "/run/strata/netns"

// defaultNICWait is how long a container's create waits for its NIC when
// the host names no wait: a hot-plug takes seconds under emulation.
const defaultNICWait = time.Minute

// containerIf is the container's interface in its network namespace.
const containerIf = "eth0"

// waitNIC waits up to timeout for the interface with hardware address mac
// in the guest's own network namespace and returns it.
func waitNIC(mac string, timeout time.Duration) (netlink.Link, error) {
	want, err := net.ParseMAC(mac)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		links, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("list interfaces: %w", err)
		}
		var seen []string
		for _, l := range links {
			if bytes.Equal(l.Attrs().HardwareAddr, want) {
				return l, nil
			}
			if l.Attrs().Flags&net.FlagLoopback == 0 {
				seen = append(seen, l.Attrs().Name+" "+l.Attrs().HardwareAddr.String())
			}
		}
		if time.Now().After(deadline) {
			have := "none besides lo"
			if len(seen) > 0 {
				have = strings.Join(seen, ", ")
			}
			return nil, fmt.Errorf("no network interface with MAC %s appeared within %s (is the NIC plugged in?); the node VM has %s", mac, timeout, have)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// netnsPath is the file of container id's network namespace.
func netnsPath(id string) string { return filepath.Join(nodeNetNS, id) }

// newNetNS makes a network namespace kept at path (a bind mount of it), with
// the calling goroutine's thread back in its own namespace afterwards.
func newNetNS(path string) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o600)
	if err != nil {
		return fmt.Errorf("network namespace file: %w", err)
	}
	_ = f.Close()
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("network namespace: unshare: %w", err)
	}
	bindErr := unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path, "", unix.MS_BIND, "")
	if err := netns.Set(orig); err != nil {
		// The thread stays in the new namespace: let it end with the
		// goroutine rather than serve another one.
		runtime.LockOSThread()
		return fmt.Errorf("network namespace: back to the guest's: %w", err)
	}
	if bindErr != nil {
		return fmt.Errorf("network namespace: keep it at %s: %w", path, bindErr)
	}
	return nil
}

// removeNetNS drops the namespace kept at path: it ends once no process is
// in it, and the NIC in it goes back to the guest's own namespace until the
// host unplugs it.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// setupNetwork makes container id's network namespace, moves link (its
// NIC) into it as eth0, gives it n's address, brings it and lo up and adds
// the default route via n's gateway. On failure nothing is left.
func setupNetwork(id string, link netlink.Link, n *guest.ContainerNet) (err error) {
	path := netnsPath(id)
	if err := newNetNS(path); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = removeNetNS(path)
		}
	}()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	defer ns.Close()
	// Route netlink alone: the guest's kernel may lack the other families
	// a handle opens by default (xfrm).
	mac := link.Attrs().HardwareAddr
	if err := netlink.LinkSetDown(link); err != nil {
		return fmt.Errorf("NIC %s: down: %w", mac, err)
	}
	if err := netlink.LinkSetNsFd(link, int(ns)); err != nil {
		return fmt.Errorf("NIC %s: move into the container's network namespace: %w", mac, err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("network namespace: list interfaces: %w", err)
	}
	var nic, lo netlink.Link
	for _, l := range links {
		switch {
		case l.Attrs().Flags&net.FlagLoopback != 0:
			lo = l
		case bytes.Equal(l.Attrs().HardwareAddr, mac):
			nic = l
		}
	}
	if nic == nil || lo == nil {
		return fmt.Errorf("network namespace: NIC %s or lo missing after the move", mac)
	}
	if err := h.LinkSetName(nic, containerIf); err != nil {
		return fmt.Errorf("NIC %s: rename to %s: %w", mac, containerIf, err)
	}
	a := n.Address
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
	if err := h.AddrAdd(nic, addr); err != nil {
		return fmt.Errorf("%s: add %s: %w", containerIf, a, err)
	}
	for _, l := range []netlink.Link{lo, nic} {
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("bring %s up: %w", l.Attrs().Name, err)
		}
	}
	if n.Gateway.IsValid() {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: nic.Attrs().Index, Gw: n.Gateway.AsSlice()}); err != nil {
			return fmt.Errorf("default route via %s: %w", n.Gateway, err)
		}
	}
	return nil
}
