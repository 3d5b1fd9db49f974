package server

import (
	"context"
	"net/http"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
)

// nodes answers GET Prefix+NodesPath: every node VM of the drivers that run them, with its
// replicas and their workloads' requests summed as its usage.
func (s *Server) nodes(w http.ResponseWriter, r *http.Request) {
	items, rev, err := s.nodeVMs(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, List{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindNodeVM + "List",
		ResourceVersion: strconv.FormatUint(rev, 10), Items: items})
}

func (s *Server) nodeVMs(ctx context.Context) ([]any, uint64, error) {
	items := []any{}
	if s.drv == nil {
		return items, 0, nil
	}
	recs, rev, err := s.store.List(ctx, v1alpha1.KindWorkload)
	if err != nil {
		return nil, 0, err
	}
	var wls []*v1alpha1.Workload
	for _, rec := range recs {
		wl, err := objects.Workload(rec)
		if err != nil {
			return nil, 0, err
		}
		wls = append(wls, wl)
	}
	for _, d := range s.drv.Drivers() {
		nl, ok := d.(runtime.NodeLister)
		if !ok {
			continue
		}
		nodes, err := nl.Nodes(ctx)
		if err != nil {
			return nil, 0, err
		}
		for _, n := range nodes {
			items = append(items, nodeVM(n, wls))
		}
	}
	return items, rev, nil
}

// nodeVM is node n as the API reports it; wls are the stored workloads, which name its
// replicas' workloads (and whose requests make up its usage when the driver reports none).
func nodeVM(n runtime.Node, wls []*v1alpha1.Workload) v1alpha1.NodeVM {
	out := v1alpha1.NodeVM{
		Name: n.Name, Class: n.Class, ShapeName: n.Shape, State: string(n.State), Replicas: []v1alpha1.NodeVMReplica{},
		Shape: v1alpha1.Capacity{
			CPU:    *resource.NewMilliQuantity(n.CPUMilli, resource.DecimalSI),
			Memory: *resource.NewQuantity(n.MemoryBytes, resource.BinarySI),
		},
		Usage: v1alpha1.Capacity{CPU: *resource.NewMilliQuantity(0, resource.DecimalSI), Memory: *resource.NewQuantity(0, resource.BinarySI)},
	}
	if !n.StartedAt.IsZero() {
		t := n.StartedAt.UTC()
		out.StartedAt = &t
	}
	// The driver's sum of the requests its replicas started with, when it reports one;
	// else (replicas started before it did) their workloads' requests now.
	driverUsage := n.UsedCPUMilli != 0 || n.UsedMemoryBytes != 0
	if driverUsage {
		out.Usage.CPU = *resource.NewMilliQuantity(n.UsedCPUMilli, resource.DecimalSI)
		out.Usage.Memory = *resource.NewQuantity(n.UsedMemoryBytes, resource.BinarySI)
	}
	for _, id := range n.Instances {
		rep := v1alpha1.NodeVMReplica{ID: id}
		for _, wl := range wls {
			if InstanceOf(wl.Metadata.Name, id) {
				rep.Workload = wl.Metadata.Name
				if !driverUsage {
					out.Usage.CPU.Add(wl.Spec.Resources.CPU)
					out.Usage.Memory.Add(wl.Spec.Resources.Memory)
				}
			}
		}
		out.Replicas = append(out.Replicas, rep)
	}
	return out
}
