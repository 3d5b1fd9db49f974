package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/api/wire"
	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/objects"
)

func newDescribe(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe (workload|segment|host) NAME",
		Short: "Show one object in detail: its tier and why, its instances, its recent events",
		Example: `  strata describe workload payments
  strata describe segment default
  strata describe host $(hostname)   # every driver check with its message`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			res, ok := objects.ResourceFor(args[0])
			if !ok || res.Kind == objects.KindEvent {
				return fmt.Errorf("unknown kind %q: use workload, segment or host", args[0])
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			var events struct {
				Items []objects.Event `json:"items"`
			}
			switch res.Kind {
			case v1alpha1.KindWorkload:
				var w v1alpha1.Workload
				if err := cl.Get(c.Context(), res.Plural, args[1], &w); err != nil {
					return failure(err)
				}
				if err := cl.List(c.Context(), "events", &events); err != nil {
					return failure(err)
				}
				// Which node VM carries each replica; a daemon without node VMs lists none,
				// and one from before node VMs does not know the path: then RUNS ON
				// names the driver alone.
				var nodes struct {
					Items []v1alpha1.NodeVM `json:"items"`
				}
				if err := cl.List(c.Context(), wire.NodesPath, &nodes); err != nil && client.Reason(err) != wire.ReasonNotFound {
					return failure(err)
				}
				return describeWorkload(s.Out, &w, events.Items, nodes.Items)
			case v1alpha1.KindHost:
				var h v1alpha1.HostObject
				if err := cl.Get(c.Context(), res.Plural, args[1], &h); err != nil {
					return failure(err)
				}
				return describeHost(s.Out, &h)
			default:
				views, wls, err := listSegmentViews(c.Context(), cl)
				if err != nil {
					return err
				}
				return describeSegment(s.Out, args[1], views, wls)
			}
		},
	}
	return cmd
}

// runsOnLine says where the replicas run and why: inside node VMs of their class, on the
// host's kernel, or (the vm tier) as VMs of their own.
func runsOnLine(nv *v1alpha1.NodeVMDecision) string {
	switch {
	case nv.Run:
		return fmt.Sprintf("node VMs of class %s (%s)", nv.Class, nv.Reason)
	case nv.Class == "":
		return fmt.Sprintf("VMs of their own (%s)", nv.Reason)
	}
	return fmt.Sprintf("the host's kernel, class %s (%s)", nv.Class, nv.Reason)
}

// replicaRunsOn says where one replica runs and why: in which node VM, or on the host's kernel
// under which driver, with the reason of the workload's node VM decision.
func replicaRunsOn(in v1alpha1.Instance, nv *v1alpha1.NodeVMDecision, nodes []v1alpha1.NodeVM) string {
	why := ""
	if nv != nil {
		why = " (" + nv.Reason + ")"
	}
	if in.Driver == "" {
		return "-"
	}
	for _, n := range nodes {
		for _, r := range n.Replicas {
			if r.ID == in.ID {
				return "node VM " + n.Name + why
			}
		}
	}
	if nv != nil && nv.Run {
		return "a node VM, " + in.Driver + why
	}
	return "host, " + in.Driver + why
}

// describeWorkload prints w, its instances (each with the node VM of nodes that carries
// it, if one does) and its events among events.
func describeWorkload(out io.Writer, w *v1alpha1.Workload, events []objects.Event, nodes []v1alpha1.NodeVM) error {
	st := v1alpha1.WorkloadStatus{}
	if w.Status != nil {
		st = *w.Status
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", w.Metadata.Name)
	fmt.Fprintf(tw, "Tier:\t%s (requested %s)\n", st.Tier, w.Spec.Isolation)
	if nv := st.NodeVM; nv != nil {
		fmt.Fprintf(tw, "Runs on:\t%s\n", runsOnLine(nv))
		if nv.Warning != "" {
			fmt.Fprintf(tw, "Warning:\t%s\n", nv.Warning)
		}
	}
	fmt.Fprintf(tw, "Phase:\t%s\n", st.Phase)
	fmt.Fprintf(tw, "Image:\t%s\n", dash(w.Spec.Image))
	if len(w.Spec.Command) > 0 {
		fmt.Fprintf(tw, "Command:\t%s\n", strings.Join(w.Spec.Command, " "))
	}
	if w.Spec.Scaling != nil {
		fmt.Fprintf(tw, "Replicas:\t%d (set by scaling; spec.replicas %d)\n", w.DesiredReplicas(), w.Spec.ReplicaCount())
	} else {
		fmt.Fprintf(tw, "Replicas:\t%d\n", w.Spec.ReplicaCount())
	}
	fmt.Fprintf(tw, "Resources:\tcpu %s, memory %s\n", w.Spec.Resources.CPU.String(), w.Spec.Resources.Memory.String())
	fmt.Fprintf(tw, "Segment:\t%s\n", w.Spec.Segment)
	fmt.Fprintf(tw, "Restart policy:\t%s\n", w.Spec.RestartPolicy)
	fmt.Fprintf(tw, "Generation:\t%d (resourceVersion %s)\n", w.Metadata.Generation, w.Metadata.ResourceVersion)
	if err := tw.Flush(); err != nil {
		return failure(err)
	}
	fmt.Fprintln(out, "\nWhy this tier:")
	if len(st.Reasons) == 0 {
		fmt.Fprintln(out, "  no rule asks for more than a container")
	}
	for _, r := range st.Reasons {
		fmt.Fprintf(out, "  %s (%s %s): %s\n", r.Rule, r.Effect, r.Tier, r.Message)
	}
	if w.Spec.Scaling != nil {
		if err := describeScaling(out, w); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "\nInstances:")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tSTATE\tRUNS ON\tPID\tIP\tRESTARTS\tSTARTED\tMESSAGE")
	for _, in := range st.Instances {
		started := "-"
		if in.StartedAt != nil {
			started = age(in.StartedAt) + " ago"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", in.ID, in.State, replicaRunsOn(in, st.NodeVM, nodes), in.PID, dash(in.IP), in.Restarts, started, in.Message)
	}
	if err := tw.Flush(); err != nil {
		return failure(err)
	}
	if len(st.Conditions) > 0 {
		fmt.Fprintln(out, "\nConditions:")
		for _, c := range st.Conditions {
			fmt.Fprintf(out, "  %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	fmt.Fprintln(out, "\nEvents:")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	n := 0
	for _, e := range events {
		if e.Object != "Workload/"+w.Metadata.Name {
			continue
		}
		n++
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format("15:04:05"), e.Type, seriesReason(e), dash(e.Instance), e.Message)
	}
	if n == 0 {
		fmt.Fprintln(tw, "  none")
	}
	return tw.Flush()
}

// describeScaling prints the Scaling section: the policy and its bounds, the replicas the
// scaler wants, and its last change with the reason.
func describeScaling(out io.Writer, w *v1alpha1.Workload) error {
	sc := *w.Spec.Scaling
	sc.SetDefaults()
	fmt.Fprintln(out, "\nScaling:")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	policy := string(v1alpha1.ScalingReactive)
	if sc.Predictive {
		policy = string(v1alpha1.ScalingPredictive) + " (lead: the tier's start-up time + one decision interval)"
		if sc.LeadSeconds > 0 {
			policy = fmt.Sprintf("%s (lead %d s)", v1alpha1.ScalingPredictive, sc.LeadSeconds)
		}
	}
	fmt.Fprintf(tw, "  Policy:\t%s\n", policy)
	fmt.Fprintf(tw, "  Min / max:\t%d / %d\n", sc.Min, sc.Max)
	fmt.Fprintf(tw, "  Target:\t%d%% of cpu %s a replica\n", sc.TargetCPUPercent, w.Spec.Resources.CPU.String())
	fmt.Fprintf(tw, "  Scale-in cooldown:\t%d s\n", *sc.ScaleInCooldownSeconds)
	var st *v1alpha1.ScalingStatus
	if w.Status != nil {
		st = w.Status.Scaling
	}
	if st == nil {
		fmt.Fprintf(tw, "  Replicas:\t%d (no decision yet)\n", w.DesiredReplicas())
		return tw.Flush()
	}
	fmt.Fprintf(tw, "  Replicas:\t%d\n", st.Replicas)
	ld := st.LastDecision
	if ld == nil {
		fmt.Fprintln(tw, "  Last decision:\tnone changed the count yet")
		return tw.Flush()
	}
	when := ld.Time
	fmt.Fprintf(tw, "  Last decision:\t%s, %s ago (%s)\n", when.Local().Format("2006-01-02 15:04:05"), age(&when), ld.Policy)
	fmt.Fprintf(tw, "  Reason:\t%s\n", ld.Reason)
	measured := fmt.Sprintf("%.2f cores", ld.DemandCores)
	if ld.LeadSeconds > 0 {
		measured += fmt.Sprintf("; forecast %.2f cores within %d s", ld.ForecastCores, ld.LeadSeconds)
	}
	fmt.Fprintf(tw, "  Demand:\t%s\n", measured)
	return tw.Flush()
}
