package control

import (
	"fmt"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// where says where a workload's replicas run: on the host's kernel (by the driver of
// their tier) or inside node VMs of their class, and why. whereRuns is the one place
// that decides it; the registry's For turns it into a driver.
type where struct {
	NodeVM bool
	// Class is the isolation class whose node VMs the replicas share (NodeVM only).
	Class string
	// Reason is why, as the decision in the workload's status gives it.
	Reason string
}

// whereRuns reads the decision admission stored in w's status (status.nodeVM, made by the
// host's policy and the workload's placement.nodeVM; see internal/assess). A vm-tier
// workload's replicas are VMs of their own; a workload stored before the decision existed
// runs on the host's kernel, as it did.
func whereRuns(w *v1alpha1.Workload) where {
	if tierOf(w) == v1alpha1.TierVM {
		return where{Reason: "tier vm: each replica is a VM of its own"}
	}
	if w.Status == nil || w.Status.NodeVM == nil {
		return where{Reason: "no node VM decision in the workload's status (stored before node VMs)"}
	}
	nv := w.Status.NodeVM
	return where{NodeVM: nv.Run, Class: nv.Class, Reason: nv.Reason}
}

// String says it for an event or a message.
func (wr where) String() string {
	if wr.NodeVM {
		return fmt.Sprintf("in node VMs of class %s (%s)", wr.Class, wr.Reason)
	}
	return fmt.Sprintf("on the host's kernel (%s)", wr.Reason)
}

// networked reports whether replicas of w in node VMs run by d can be given their
// network: d attaches them to their segment (a tap plugged into the node VM as the
// replica's NIC, Capabilities.VMNet, or a network namespace), or w needs none beyond what
// a node VM gives a replica without (loopback): it is on the default segment and
// publishes no ports. An empty string means they can; otherwise it is the message that
// refuses them.
func networked(w *v1alpha1.Workload, d runtime.Driver) string {
	if caps := d.Capabilities(); caps.NetNS || caps.VMNet {
		return ""
	}
	seg := segmentOf(w)
	if seg == v1alpha1.DefaultSegment && len(w.Spec.Ports) == 0 {
		return ""
	}
	what := fmt.Sprintf("segment %s", seg)
	if len(w.Spec.Ports) > 0 {
		what += " and its published ports"
	}
	return fmt.Sprintf("the node VM driver %q cannot attach a replica to its segment yet (a replica in a node VM has loopback only), "+
		"so this workload, which needs %s, is not started there: set spec.placement.nodeVM: never to run it on the host's kernel, "+
		"or run the daemon with --node-vms=off", d.Name(), what)
}
