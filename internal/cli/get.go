package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/objects"
)

func newGet(s Streams) *cobra.Command {
	var output, kubeconfigPath, namespace string
	cmd := &cobra.Command{
		Use:   "get (workloads|workload|segments|segment|hosts|host|nodes|node) [NAME] [-o table|json|yaml|wide]",
		Short: "List workloads, segments, hosts or node VMs, or show one",
		Long: `Get prints objects from the daemon. With a plural kind and no name it lists them all;
with a name it shows that one. -o json prints {"items": [...]} for a list and the object
itself for one; -o wide adds columns.

Hosts are the machines strata runs on, as each daemon reports itself every 10 seconds:
READY is Ready, NotReady (a driver check fails: see describe host) or Stale (no
heartbeat for 30 seconds: the daemon is down or stuck); CPU and MEMORY are what running
instances were given over what the machine has.

Nodes are the node VMs the daemon runs: VMs of its own, each carrying the container and
sandbox replicas of one isolation class (docs/node-vms.md). CLASS is that class; CPU and
MEMORY are what its replicas request over its shape; REPLICAS how many it carries (-o wide
lists them); STATE its VM's state; AGE since it booted.

With --kubeconfig, get workloads reads the workloads strata runs in a namespace of a
Kubernetes cluster (applied by strata apply --kubeconfig or by the operator) from their
Deployments, StatefulSets and VirtualMachines: tier, phase, ready replicas, and each VM's
printable status. -o json prints {"items": [...]} of Workloads, as the daemon does.`,
		Example: `  strata get workloads
  strata get workload payments -o yaml
  strata get segments -o wide      # with the matrix of allowed flows between segments
  strata get hosts                 # readiness, allocation and heartbeat of this machine
  strata get nodes -o wide         # node VMs: class, shape, usage, the replicas they carry
  strata get workloads -o json | jq '.items[].status.phase'
  strata get workloads --kubeconfig ~/.kube/config --namespace shop`,
		Args:      cobra.RangeArgs(1, 2),
		ValidArgs: []string{"workloads", "workload", "segments", "segment", "hosts", "host", "nodes", "node"},
		RunE: func(c *cobra.Command, args []string) error {
			if args[0] == "nodes" || args[0] == "node" {
				if kubeconfigPath != "" || namespace != "" {
					return fmt.Errorf("node VMs are the daemon's: get nodes takes no --kubeconfig or --namespace")
				}
				name := ""
				if len(args) == 2 {
					name = args[1]
				}
				return getNodes(c, s.Out, name, output)
			}
			res, ok := objects.ResourceFor(args[0])
			if !ok || res.Kind == objects.KindEvent {
				return fmt.Errorf("unknown kind %q: use workloads, segments, hosts or nodes", args[0])
			}
			if kubeconfigPath != "" {
				if res.Kind != v1alpha1.KindWorkload || len(args) == 2 {
					return fmt.Errorf("with --kubeconfig, get lists workloads: strata get workloads --kubeconfig PATH")
				}
				return getClusterWorkloads(c.Context(), s, kubeconfigPath, namespace, output)
			}
			if namespace != "" {
				return fmt.Errorf("--namespace reads a cluster: give --kubeconfig too")
			}
			switch output {
			case "table", "wide", "json", "yaml":
			default:
				return fmt.Errorf("unknown output format %q: use table, wide, json or yaml", output)
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			if len(args) == 2 {
				var raw json.RawMessage
				if err := cl.Get(c.Context(), res.Plural, args[1], &raw); err != nil {
					return apiFailure(err)
				}
				return printObjects(s.Out, res, []json.RawMessage{raw}, output, true)
			}
			var list struct {
				Items []json.RawMessage `json:"items"`
			}
			if err := cl.List(c.Context(), res.Plural, &list); err != nil {
				return apiFailure(err)
			}
			if err := printObjects(s.Out, res, list.Items, output, false); err != nil {
				return err
			}
			if res.Kind == v1alpha1.KindSegment && output == "wide" {
				views, _, err := listSegmentViews(c.Context(), cl)
				if err != nil {
					return err
				}
				return printFlowMatrix(s.Out, views)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, wide, json or yaml")
	cmd.Flags().StringVar(&kubeconfigPath, "kubeconfig", "", "read workloads from the Kubernetes cluster of this kubeconfig file instead of the daemon")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "with --kubeconfig: namespace to read (default: the kubeconfig context's, else default)")
	return cmd
}

// apiFailure turns a daemon error into the right exit code: invalid input is 2, the rest 1.
func apiFailure(err error) error {
	if client.Reason(err) == "Invalid" {
		return fmt.Errorf("%w", err)
	}
	return failure(err)
}

func printObjects(w io.Writer, res objects.Resource, items []json.RawMessage, output string, single bool) error {
	switch output {
	case "json":
		if single {
			return writeJSON(w, items[0])
		}
		return writeJSON(w, map[string]any{"items": items})
	case "yaml":
		var v any = map[string]any{"items": items}
		if single {
			v = items[0]
		}
		b, err := json.Marshal(v)
		if err != nil {
			return failure(err)
		}
		y, err := yaml.JSONToYAML(b)
		if err != nil {
			return failure(err)
		}
		_, err = w.Write(y)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	wide := output == "wide"
	switch res.Kind {
	case v1alpha1.KindWorkload:
		if wide {
			fmt.Fprintln(tw, "NAME\tTIER\tPHASE\tREADY\tRESTARTS\tSEGMENT\tIMAGE\tIPS\tAGE")
		} else {
			fmt.Fprintln(tw, "NAME\tTIER\tPHASE\tREADY\tRESTARTS\tAGE")
		}
		for _, raw := range items {
			var wl v1alpha1.Workload
			if err := json.Unmarshal(raw, &wl); err != nil {
				return failure(err)
			}
			st := v1alpha1.WorkloadStatus{}
			if wl.Status != nil {
				st = *wl.Status
			}
			running, restarts := 0, int32(0)
			var ips []string
			for _, in := range st.Instances {
				if in.State == "running" {
					running++
				}
				restarts += in.Restarts
				if in.IP != "" {
					ips = append(ips, in.IP)
				}
			}
			ready := fmt.Sprintf("%d/%d", running, wl.DesiredReplicas())
			age := age(wl.Metadata.CreationTimestamp)
			if wide {
				image := wl.Spec.Image
				if image == "" {
					image = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", wl.Metadata.Name, st.Tier, st.Phase, ready, restarts, wl.Spec.Segment, image, dash(strings.Join(ips, ",")), age)
			} else {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", wl.Metadata.Name, st.Tier, st.Phase, ready, restarts, age)
			}
		}
	case v1alpha1.KindHost:
		if err := printHosts(tw, items, wide); err != nil {
			return err
		}
	case v1alpha1.KindSegment:
		fmt.Fprintln(tw, "NAME\tSUBNET\tGATEWAY\tBRIDGE\tEGRESS\tWORKLOADS\tAGE")
		for _, raw := range items {
			var sg v1alpha1.Segment
			if err := json.Unmarshal(raw, &sg); err != nil {
				return failure(err)
			}
			st := v1alpha1.SegmentStatus{}
			if sg.Status != nil {
				st = *sg.Status
			}
			subnet := sg.Spec.Subnet
			if st.Subnet != "" {
				subnet = st.Subnet
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", sg.Metadata.Name, dash(subnet), dash(st.Gateway), dash(st.Bridge), sg.Spec.Egress, st.Workloads, age(sg.Metadata.CreationTimestamp))
		}
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age prints how long ago t was, the way people say it: 45s, 12m, 3h, 5d.
func age(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return span(time.Since(*t))
}

// span prints a duration the way age does.
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
