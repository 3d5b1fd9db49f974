package netseg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// isLinkNotFound reports whether err says that no link has the name asked for.
func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	// ENODEV: the link went away between finding it and acting on it, as a veth does when
	// the kernel tears down the namespace holding its peer.
	return errors.As(err, &nf) || errors.Is(err, syscall.ENODEV)
}

// linkByName returns the link called name, nil if there is none.
func linkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if isLinkNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up link %s: %w", name, err)
	}
	return l, nil
}

// deleteLink deletes the link called name, if there is one and it is of
// kind (netlink's Type(): "veth", "bridge").
func deleteLink(h *netlink.Handle, name, kind string) error {
	l, err := linkByName(h, name)
	if err != nil || l == nil {
		return err
	}
	if l.Type() != kind {
		return fmt.Errorf("%w: link %s is a %s, not a %s made by strata; rename or delete it", ErrConflict, name, l.Type(), kind)
	}
	if err := h.LinkDel(l); err != nil && !isLinkNotFound(err) {
		return fmt.Errorf("delete %s %s: %w", kind, name, err)
	}
	return nil
}

// linkList lists the links, retrying a dump the kernel interrupted.
func linkList(h *netlink.Handle) ([]netlink.Link, error) {
	var err error
	for range 5 {
		var links []netlink.Link
		links, err = h.LinkList()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return links, err
		}
	}
	return nil, fmt.Errorf("list links: %w", err)
}

// ipNet is a netlink address: a within subnet's prefix length.
func ipNet(a netip.Addr, subnet netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)}}
}

// hasAddr reports whether link l holds address a with subnet's length.
func hasAddr(h *netlink.Handle, l netlink.Link, a netip.Addr, subnet netip.Prefix) (bool, error) {
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return false, fmt.Errorf("list addresses of %s: %w", l.Attrs().Name, err)
	}
	for _, x := range addrs {
		got, ok := netip.AddrFromSlice(x.IP)
		ones, _ := x.Mask.Size()
		if ok && got.Unmap() == a && ones == subnet.Bits() {
			return true, nil
		}
	}
	return false, nil
}

func isUp(l netlink.Link) bool { return l.Attrs().Flags&net.FlagUp != 0 }

// operUpTimeout bounds the wait for a new veth pair to carry traffic.
const operUpTimeout = 5 * time.Second

// waitOperUp waits until link hostName (in h's namespace) and link
// instName (in nh's) are both operationally up. The kernel attaches a
// link's transmit queue only when it processes the carrier change, up to a
// second after the link was set up, and drops what is sent before: an
// instance started at once would lose its first packets.
func waitOperUp(ctx context.Context, h *netlink.Handle, hostName string, nh *netlink.Handle, instName string) error {
	ctx, cancel := context.WithTimeout(ctx, operUpTimeout)
	defer cancel()
	pause := time.Millisecond
	for {
		hostUp, err := operUp(h, hostName)
		if err != nil {
			return err
		}
		instUp, err := operUp(nh, instName)
		if err != nil {
			return err
		}
		if hostUp && instUp {
			return nil
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("veth %s/%s is not up after %s: %w", hostName, instName, operUpTimeout, ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

func operUp(h *netlink.Handle, name string) (bool, error) {
	l, err := h.LinkByName(name)
	if err != nil {
		return false, fmt.Errorf("look up link %s: %w", name, err)
	}
	return l.Attrs().OperState == netlink.OperUp, nil
}
