package nodevm

import (
	"context"
	"slices"
	"strings"

	"strata.dev/strata/internal/runtime"
)

var _ runtime.NodeLister = (*Driver)(nil)

// Nodes implements runtime.NodeLister: the node VMs among the qemu driver's
// instances, each with its class, its shape, the instances whose records
// place them in it and that have not finished, and what those request.
func (d *Driver) Nodes(ctx context.Context) ([]runtime.Node, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	vms, err := d.cfg.QEMU.List(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := d.records()
	if err != nil {
		return nil, err
	}
	var out []runtime.Node
	for _, st := range vms {
		class, ok := d.isNodeVM(st)
		if !ok {
			continue
		}
		shape := d.shapeOf(st)
		n := runtime.Node{
			Name: st.ID, Class: class, Shape: shape.Name, CPUMilli: shape.CPUMilli, MemoryBytes: shape.MemoryBytes,
			State: st.State, PID: st.PID, StartedAt: st.StartedAt,
		}
		for _, r := range recs {
			if r.VM != st.ID || r.Finished || st.State == runtime.StateRunning && r.StartedAt.Before(st.StartedAt) {
				continue
			}
			n.Instances = append(n.Instances, r.ID)
			n.UsedCPUMilli += r.CPUMilli
			n.UsedMemoryBytes += r.MemoryBytes
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b runtime.Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
