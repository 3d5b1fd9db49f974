package netseg

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Host is the network namespace that holds the segment bridges, the host
// ends of the veth pairs and the taps. The Manager reaches it only through this
// interface, so tests can hand it a namespace of their own.
type Host interface {
	// Netlink opens a rtnetlink handle inside the host namespace; the
	// caller closes it.
	Netlink() (*netlink.Handle, error)
	// Do runs f on an OS thread inside the host namespace (for
	// /proc/sys/net, sockets and /dev/net/tun) and returns f's error.
	Do(f func() error) error
}

// RootHost is the namespace the daemon itself runs in.
func RootHost() Host { return rootHost{} }

type rootHost struct{}

func (rootHost) Netlink() (*netlink.Handle, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return h, nil
}

// Do runs f on the calling goroutine: every thread of the process is in the
// daemon's namespace, since the manager leaves none anywhere else.
func (rootHost) Do(f func() error) error { return f() }

// NamespaceHost is the network namespace ns (an open handle the caller keeps
// open and closes after the Manager is done).
func NamespaceHost(ns netns.NsHandle) Host { return nsHost{ns: ns} }

type nsHost struct{ ns netns.NsHandle }

func (h nsHost) Netlink() (*netlink.Handle, error) {
	nh, err := netlink.NewHandleAt(h.ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in host namespace %s: %w", h.ns, err)
	}
	return nh, nil
}

func (h nsHost) Do(f func() error) error { return inNamespace(h.ns, f) }

// inNamespace runs f on a fresh OS thread that has joined ns. The thread
// stays locked and ends with its goroutine, so no thread ever returns to the
// scheduler in a foreign namespace.
func inNamespace(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}
