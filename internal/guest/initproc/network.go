package initproc

import (
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/vishvananda/netlink"

	"strata.dev/strata/internal/guest"
)

// LinkWait bounds the wait for the network interface to appear.
const LinkWait = 2 * time.Second

// configureNetwork brings lo up and, when n is set, gives the first other
// interface (virtio-net's, eth0) n's address and default route.
func configureNetwork(n *guest.NetConfig) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("network: loopback: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("network: bring lo up: %w", err)
	}
	if n == nil {
		return nil
	}
	link, err := firstInterface(LinkWait)
	if err != nil {
		return err
	}
	name := link.Attrs().Name
	a := n.Address
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
	if err := netlink.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("network: add %s to %s: %w", a, name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("network: bring %s up: %w", name, err)
	}
	if !n.Gateway.IsValid() {
		return nil
	}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: n.Gateway.AsSlice()}
	if err := netlink.RouteAdd(route); err != nil {
		return fmt.Errorf("network: default route via %s on %s: %w", n.Gateway, name, err)
	}
	return nil
}

// firstInterface is the interface with the lowest index other than
// loopback, waiting up to timeout for one to appear.
func firstInterface(timeout time.Duration) (netlink.Link, error) {
	deadline := time.Now().Add(timeout)
	for {
		links, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("network: list interfaces: %w", err)
		}
		links = slices.DeleteFunc(links, func(l netlink.Link) bool {
			return l.Attrs().Flags&net.FlagLoopback != 0
		})
		if len(links) > 0 {
			return slices.MinFunc(links, func(a, b netlink.Link) int { return a.Attrs().Index - b.Attrs().Index }), nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("network: no interface besides lo after %s (is a virtio-net device attached?)", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
