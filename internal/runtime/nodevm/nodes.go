package nodevm

import (
	"context"
	"slices"
	"strings"

	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
)

var _ runtime.NodeLister = (*Driver)(nil)

// Nodes implements runtime.NodeLister: the node VMs among the qemu driver's
// instances, each with its class, the driver's node shape, and the
// instances whose records place them in it and that have not finished.
func (d *Driver) Nodes(ctx context.Context) ([]runtime.Node, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	vms, err := d.cfg.QEMU.List(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := d.ids()
	if err != nil {
		return nil, err
	}
	in := map[string][]string{}
	for _, id := range ids {
		r, err := d.readRecord(id)
		if err != nil || r.Finished {
			continue
		}
		in[r.VM] = append(in[r.VM], r.ID)
	}
	var out []runtime.Node
	for _, st := range vms {
		class, ok := st.Labels[LabelClass]
		if !ok || st.Labels[qemu.LabelNodeVM] != "true" {
			continue
		}
		out = append(out, runtime.Node{
			Name: st.ID, Class: class, CPUMilli: d.cfg.NodeShape.CPUMilli, MemoryBytes: d.cfg.NodeShape.MemoryBytes,
			State: st.State, PID: st.PID, StartedAt: st.StartedAt, Instances: in[st.ID],
		})
	}
	slices.SortFunc(out, func(a, b runtime.Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
