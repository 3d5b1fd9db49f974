package daemon

import (
	"context"
	"net/netip"

	"strata.dev/strata/internal/netseg"
)

// network adapts the network manager to what the workload controller needs: a segment is
// set up the first time an instance joins it.
type network struct{ m *netseg.Manager }

func (n network) Attach(ctx context.Context, segment, id string) (string, string, error) {
	if _, err := n.m.EnsureSegment(ctx, segment, netip.Prefix{}); err != nil {
		return "", "", err
	}
	a, err := n.m.Attach(ctx, segment, id)
	if err != nil {
		return "", "", err
	}
	return a.NetNS, a.IP.String(), nil
}

func (n network) Detach(ctx context.Context, segment, id string) error {
	return n.m.Detach(ctx, segment, id)
}
