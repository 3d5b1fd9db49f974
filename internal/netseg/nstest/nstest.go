// Package nstest is test support for code that works in network namespaces: it makes
// namespaces and runs small servers inside them. Only tests import it.
package nstest

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// NewNamed creates a network namespace bind-mounted at /run/netns/name (visible to
// `ip netns`) on a thread that is thrown away afterwards, so no goroutine of the caller
// changes namespace.
func NewNamed(name string) (netns.NsHandle, error) {
	type result struct {
		ns  netns.NsHandle
		err error
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread stays in the new namespace and ends here
		ns, err := netns.NewNamed(name)
		c <- result{ns, err}
	}()
	r := <-c
	return r.ns, r.err
}

// ServeTCP listens on addr inside a namespace (in runs a function there) until the test
// ends, and answers every connection with the line reply(conn) returns.
func ServeTCP(tb testing.TB, in func(func() error) error, addr netip.AddrPort, reply func(c net.Conn) string) {
	tb.Helper()
	var ln net.Listener
	err := in(func() error {
		var err error
		ln, err = net.Listen("tcp4", addr.String())
		return err
	})
	if err != nil {
		tb.Fatalf("listen on %s: %v", addr, err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "%s\n", reply(c))
			_ = c.Close()
		}
	}()
}

// RemoteIP is a reply for ServeTCP: the address the connection came from.
func RemoteIP(c net.Conn) string { return c.RemoteAddr().(*net.TCPAddr).IP.String() }
