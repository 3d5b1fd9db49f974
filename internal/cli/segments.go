package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/client"
)

// segView is a segment as the CLI explains it: declared by a Segment object, or implicit
// (the default segment, or one that workloads name without an object: egress allowed, no
// flows in).
type segView struct {
	name     string
	spec     v1alpha1.SegmentSpec
	status   *v1alpha1.SegmentStatus
	declared bool
}

// segmentViews lists the declared segments and the implicit ones the workloads use (the
// default segment among them, when a workload is on it), sorted.
func segmentViews(segs []v1alpha1.Segment, wls []v1alpha1.Workload) []segView {
	byName := map[string]segView{}
	for _, w := range wls {
		if _, ok := byName[segmentName(w)]; !ok {
			byName[segmentName(w)] = segView{name: segmentName(w), spec: v1alpha1.SegmentSpec{Egress: v1alpha1.DefaultEgress}}
		}
	}
	for _, s := range segs {
		spec := s.Spec
		if spec.Egress == "" {
			spec.Egress = v1alpha1.DefaultEgress
		}
		byName[s.Metadata.Name] = segView{name: s.Metadata.Name, spec: spec, status: s.Status, declared: true}
	}
	out := make([]segView, 0, len(byName))
	for _, v := range byName {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b segView) int { return strings.Compare(a.name, b.name) })
	return out
}

func segmentName(w v1alpha1.Workload) string {
	if w.Spec.Segment == "" {
		return v1alpha1.DefaultSegment
	}
	return w.Spec.Segment
}

// flow says what segment from may reach on segment to: "all" (the same segment, or an
// allow rule without ports), the allowed ports ("tcp/8080 udp/53"), or "" for nothing.
func flow(from string, to segView) string {
	if from == to.name {
		return "all"
	}
	var ports []string
	for _, a := range to.spec.Allow {
		if a.From.Segment != from {
			continue
		}
		if len(a.Ports) == 0 {
			return "all"
		}
		for _, p := range a.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = v1alpha1.ProtocolTCP
			}
			ports = append(ports, fmt.Sprintf("%s/%d", proto, p.Port))
		}
	}
	slices.Sort(ports)
	return strings.Join(slices.Compact(ports), " ")
}

// printFlowMatrix prints who may reach whom: a row per source segment, a column per
// destination, plus a column for outside the host (egress).
func printFlowMatrix(w io.Writer, views []segView) error {
	fmt.Fprintln(w, "\nAllowed flows (row: from, column: to):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := []string{"FROM \\ TO"}
	for _, v := range views {
		header = append(header, v.name)
	}
	fmt.Fprintln(tw, strings.Join(append(header, "(outside)"), "\t"))
	for _, from := range views {
		row := []string{from.name}
		for _, to := range views {
			row = append(row, dash(flow(from.name, to)))
		}
		egress := "-"
		if from.spec.Egress == v1alpha1.EgressAllow {
			egress = "all"
		}
		fmt.Fprintln(tw, strings.Join(append(row, egress), "\t"))
	}
	return tw.Flush()
}

// describeSegment explains one segment: what the host has, its workloads, who may reach it
// on which ports, and whom it may reach.
func describeSegment(out io.Writer, name string, views []segView, wls []v1alpha1.Workload) error {
	i := slices.IndexFunc(views, func(v segView) bool { return v.name == name })
	if i < 0 {
		return fmt.Errorf("segment %s: no Segment object and no workload uses it", name)
	}
	v := views[i]
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", v.name)
	if !v.declared {
		fmt.Fprintf(tw, "Declared:\tno (implicit: %s)\n", map[bool]string{true: "every workload without a segment is here", false: "workloads name it; apply a Segment to set its flows"}[v.name == v1alpha1.DefaultSegment])
	}
	st := v1alpha1.SegmentStatus{}
	if v.status != nil {
		st = *v.status
	}
	subnet := v.spec.Subnet
	if st.Subnet != "" {
		subnet = st.Subnet
	}
	fmt.Fprintf(tw, "Subnet:\t%s\n", dash(subnet))
	fmt.Fprintf(tw, "Gateway:\t%s (answers workload names: NAME and NAME.%s)\n", dash(st.Gateway), v.name)
	fmt.Fprintf(tw, "Bridge:\t%s\n", dash(st.Bridge))
	egress := "allow: workloads reach outside the host (masqueraded)"
	if v.spec.Egress == v1alpha1.EgressDeny {
		egress = "deny: workloads cannot reach outside the host"
	}
	fmt.Fprintf(tw, "Egress:\t%s\n", egress)
	for _, c := range st.Conditions {
		fmt.Fprintf(tw, "Condition:\t%s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	if err := tw.Flush(); err != nil {
		return failure(err)
	}

	fmt.Fprintln(out, "\nWorkloads:")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	n := 0
	var published []string
	for _, w := range wls {
		if segmentName(w) != name {
			continue
		}
		n++
		tier, ips := "-", []string{}
		if w.Status != nil {
			tier = string(w.Status.Tier)
			for _, in := range w.Status.Instances {
				if in.IP != "" {
					ips = append(ips, in.IP)
				}
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", w.Metadata.Name, tier, dash(strings.Join(ips, ",")))
		for _, p := range w.Spec.Ports {
			if p.Publish != 0 {
				proto := p.Protocol
				if proto == "" {
					proto = v1alpha1.ProtocolTCP
				}
				published = append(published, fmt.Sprintf("%s/%d -> %s:%d", proto, p.Publish, w.Metadata.Name, p.Port))
			}
		}
	}
	if n == 0 {
		fmt.Fprintln(tw, "  none")
	}
	if err := tw.Flush(); err != nil {
		return failure(err)
	}

	fmt.Fprintln(out, "\nReachable from:")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, from := range views {
		if f := flow(from.name, v); f != "" {
			what := f
			if f == "all" {
				what = "every port"
			}
			label := from.name
			if from.name == name {
				label += " (itself)"
			}
			fmt.Fprintf(tw, "  %s\t%s\n", label, what)
		}
	}
	if len(published) > 0 {
		fmt.Fprintf(tw, "  the host's addresses\t%s (published)\n", strings.Join(published, ", "))
	}
	for _, a := range v.spec.Allow {
		if !slices.ContainsFunc(views, func(s segView) bool { return s.name == a.From.Segment }) {
			fmt.Fprintf(tw, "  %s\tadmitted once that segment exists\n", a.From.Segment)
		}
	}
	if err := tw.Flush(); err != nil {
		return failure(err)
	}

	fmt.Fprintln(out, "\nMay reach:")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, to := range views {
		if to.name == name {
			continue
		}
		if f := flow(name, to); f != "" {
			if f == "all" {
				f = "every port"
			}
			fmt.Fprintf(tw, "  %s\t%s\n", to.name, f)
		}
	}
	if v.spec.Egress == v1alpha1.EgressAllow {
		fmt.Fprintf(tw, "  outside the host\tevery port\n")
	}
	return tw.Flush()
}

// listSegmentViews fetches the segments and workloads and builds the views.
func listSegmentViews(ctx context.Context, cl *client.Client) ([]segView, []v1alpha1.Workload, error) {
	var segs struct {
		Items []v1alpha1.Segment `json:"items"`
	}
	if err := cl.List(ctx, "segments", &segs); err != nil {
		return nil, nil, apiFailure(err)
	}
	var wls struct {
		Items []v1alpha1.Workload `json:"items"`
	}
	if err := cl.List(ctx, "workloads", &wls); err != nil {
		return nil, nil, apiFailure(err)
	}
	return segmentViews(segs.Items, wls.Items), wls.Items, nil
}
