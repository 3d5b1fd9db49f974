package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
)

// staleAfter is how many missed heartbeats make a host's report stale.
const staleAfter = 3

// printHosts prints the hosts table: readiness, what is allocated of what there is, and
// the age of the last heartbeat.
func printHosts(tw *tabwriter.Writer, items []json.RawMessage, wide bool) error {
	if wide {
		fmt.Fprintln(tw, "NAME\tREADY\tCPU\tMEMORY\tINSTANCES\tTIERS\tVMS\tHEARTBEAT\tKERNEL\tVERSION")
	} else {
		fmt.Fprintln(tw, "NAME\tREADY\tCPU\tMEMORY\tINSTANCES\tTIERS\tHEARTBEAT")
	}
	for _, raw := range items {
		var h v1alpha1.HostObject
		if err := json.Unmarshal(raw, &h); err != nil {
			return failure(err)
		}
		st := v1alpha1.HostStatus{}
		if h.Status != nil {
			st = *h.Status
		}
		ready := hostReadiness(st, time.Now())
		tiers := make([]string, len(st.Tiers))
		for i, t := range st.Tiers {
			tiers[i] = string(t)
		}
		cpu := fmt.Sprintf("%s/%s", st.Allocated.CPU.String(), st.Capacity.CPU.String())
		mem := fmt.Sprintf("%s/%s", mebibytes(st.Allocated.Memory), mebibytes(st.Capacity.Memory))
		beat := heartbeatAge(st.LastHeartbeatTime, time.Now())
		if wide {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", h.Metadata.Name, ready, cpu, mem, st.Instances,
				dash(strings.Join(tiers, ",")), dash(st.Accelerator), beat, dash(st.Kernel), dash(st.Version))
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", h.Metadata.Name, ready, cpu, mem, st.Instances, dash(strings.Join(tiers, ",")), beat)
		}
	}
	return nil
}

// hostReadiness is Ready, NotReady, or Stale when the daemon missed its heartbeats
// (stopped, or hung): then its last word no longer counts.
func hostReadiness(st v1alpha1.HostStatus, now time.Time) string {
	every := time.Duration(st.HeartbeatSeconds) * time.Second
	if every <= 0 {
		every = 10 * time.Second
	}
	switch {
	case st.LastHeartbeatTime.IsZero() || now.Sub(st.LastHeartbeatTime) > staleAfter*every:
		return "Stale"
	case st.Ready:
		return "Ready"
	}
	return "NotReady"
}

func heartbeatAge(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return span(max(now.Sub(t), 0)) + " ago"
}

// mebibytes prints a memory quantity in Mi or Gi, rounded, the way people read them.
func mebibytes(q resource.Quantity) string {
	b := q.Value()
	switch {
	case b >= 10<<30:
		return fmt.Sprintf("%dGi", b>>30)
	case b >= 1<<30:
		return fmt.Sprintf("%.1fGi", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%dMi", b>>20)
}

// describeHost prints one host: machine, capacity and allocation, and every driver
// check with its message.
func describeHost(out io.Writer, h *v1alpha1.HostObject) error {
	st := v1alpha1.HostStatus{}
	if h.Status != nil {
		st = *h.Status
	}
	now := time.Now()
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", h.Metadata.Name)
	fmt.Fprintf(tw, "Ready:\t%s\n", hostReadiness(st, now))
	fmt.Fprintf(tw, "Heartbeat:\t%s (%s, every %ds)\n", heartbeatAge(st.LastHeartbeatTime, now), st.LastHeartbeatTime.Format(time.RFC3339), st.HeartbeatSeconds)
	fmt.Fprintf(tw, "Machine:\t%s, kernel %s, %s\n", dash(st.OS), dash(st.Kernel), st.Arch)
	fmt.Fprintf(tw, "strata:\t%s\n", dash(st.Version))
	fmt.Fprintf(tw, "CPU:\t%s of %s allocated\n", st.Allocated.CPU.String(), st.Capacity.CPU.String())
	fmt.Fprintf(tw, "Memory:\t%s of %s allocated\n", mebibytes(st.Allocated.Memory), mebibytes(st.Capacity.Memory))
	fmt.Fprintf(tw, "Instances:\t%d running\n", st.Instances)
	if st.Accelerator != "" {
		fmt.Fprintf(tw, "VMs run with:\t%s\n", strings.ToUpper(st.Accelerator))
	}
	if err := tw.Flush(); err != nil {
		return failure(err)
	}
	fmt.Fprintln(out, "\nDrivers:")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  CHECK\tTIERS\tREADY\tMESSAGE")
	for _, d := range st.Drivers {
		tiers := make([]string, len(d.Tiers))
		for i, t := range d.Tiers {
			tiers[i] = string(t)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%t\t%s\n", d.Name, dash(strings.Join(tiers, ",")), d.Ready, d.Message)
	}
	return tw.Flush()
}
