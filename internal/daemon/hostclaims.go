package daemon

import (
	"context"
	"fmt"
	"net/netip"

	"strata.dev/strata/internal/netseg"
	"strata.dev/strata/internal/server"
)

// privilegedPorts are the host ports below this one: only root may listen on them, and
// the host's own services (ssh, DNS, web servers) live there.
const privilegedPorts = 1024

// hostClaims implements server.HostClaims for the host the network manager runs on.
type hostClaims struct {
	m *netseg.Manager
	// allowPrivileged lets workloads publish host ports below 1024 (serve
	// --allow-privileged-ports).
	allowPrivileged bool
}

// PublishRefusal refuses host ports below 1024 (unless allowed) and ports a socket of
// the host listens on: the published port's DNAT would take that service's connections.
func (c hostClaims) PublishRefusal(_ context.Context, protocol string, port int) (*server.Refusal, error) {
	if port < privilegedPorts && !c.allowPrivileged {
		return &server.Refusal{
			Reason: fmt.Sprintf("host port %d/%s is a privileged port (below %d), where the host's own services listen", port, protocol, privilegedPorts),
			Hint:   fmt.Sprintf("publish a host port of %d or above, or start the daemon with --allow-privileged-ports", privilegedPorts),
		}, nil
	}
	who, err := c.m.HostListener(protocol, uint16(port))
	if err != nil || who == "" {
		return nil, err
	}
	return &server.Refusal{
		Reason: fmt.Sprintf("host port %d/%s is in use on the host: %s listens on it, and publishing it would take that service's connections", port, protocol, who),
		Hint:   "publish a host port that no service of the host listens on",
	}, nil
}

// SubnetRefusal refuses subnets that overlap the host's routes and addresses (its
// uplinks' networks, VPNs, other bridges), strata's own bridges aside.
func (c hostClaims) SubnetRefusal(_ context.Context, subnet netip.Prefix) (*server.Refusal, error) {
	what, err := c.m.HostUse(subnet)
	if err != nil || what == "" {
		return nil, err
	}
	return &server.Refusal{
		Reason: fmt.Sprintf("subnet %s overlaps the host's %s: a segment there would capture the host's own traffic", subnet, what),
		Hint:   "choose a subnet the host does not use, or leave it empty to get one from the pool",
	}, nil
}
