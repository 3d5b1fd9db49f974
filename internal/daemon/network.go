package daemon

import (
	"context"
	"net/netip"

	"strata.dev/strata/internal/control"
	"strata.dev/strata/internal/netseg"
	"strata.dev/strata/internal/runtime"
)

// network adapts the network manager to what the workload controller needs: a segment is
// set up the first time an instance joins it; containers and sandboxes get a network
// namespace, VMs a tap.
type network struct{ m *netseg.Manager }

func (n network) Attach(ctx context.Context, segment, id string, vm bool) (control.Attachment, error) {
	if _, err := n.m.EnsureSegment(ctx, segment, netip.Prefix{}); err != nil {
		return control.Attachment{}, err
	}
	if vm {
		a, err := n.m.AttachTap(ctx, segment, id)
		if err != nil {
			return control.Attachment{}, err
		}
		return control.Attachment{IP: a.IP.String(), VMNet: &runtime.VMNet{
			Address: netip.PrefixFrom(a.IP, a.Subnet.Bits()), Gateway: a.Gateway, MAC: a.MAC,
		}}, nil
	}
	a, err := n.m.Attach(ctx, segment, id)
	if err != nil {
		return control.Attachment{}, err
	}
	return control.Attachment{NetNS: a.NetNS, IP: a.IP.String()}, nil
}

func (n network) Detach(ctx context.Context, segment, id string) error {
	return n.m.Detach(ctx, segment, id)
}
