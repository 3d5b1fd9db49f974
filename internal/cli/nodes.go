package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/api/wire"
	"strata.dev/strata/internal/objects"
)

// nodesResource is how get names node VMs: they are not stored objects, the daemon
// reports them as they run.
var nodesResource = objects.Resource{Kind: v1alpha1.KindNodeVM, Plural: wire.NodesPath, Singular: "node"}

// getNodes prints the daemon's node VMs (name "" for all, else the one named) in output
// (table, wide, json or yaml); a name the daemon does not list is an error.
func getNodes(c *cobra.Command, out io.Writer, name, output string) error {
	switch output {
	case "table", "wide", "json", "yaml":
	default:
		return fmt.Errorf("unknown output format %q: use table, wide, json or yaml", output)
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := cl.List(c.Context(), wire.NodesPath, &list); err != nil {
		return apiFailure(err)
	}
	items := list.Items
	if name != "" {
		items = nil
		for _, raw := range list.Items {
			var n v1alpha1.NodeVM
			if err := json.Unmarshal(raw, &n); err != nil {
				return failure(err)
			}
			if n.Name == name {
				items = append(items, raw)
			}
		}
		if len(items) == 0 {
			return failure(fmt.Errorf("node VM %q not found: strata get nodes lists them", name))
		}
	}
	switch output {
	case "json", "yaml":
		return printObjects(out, nodesResource, items, output, name != "")
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if err := printNodes(tw, items, output == "wide"); err != nil {
		return err
	}
	return tw.Flush()
}

// printNodes prints the node VMs table: class, shape, what their replicas request of
// the shape, how many replicas, state and age; wide adds the replicas' IDs.
func printNodes(tw *tabwriter.Writer, items []json.RawMessage, wide bool) error {
	head := "NAME\tCLASS\tSHAPE\tCPU\tMEMORY\tREPLICAS\tSTATE\tAGE"
	if wide {
		head += "\tINSTANCES"
	}
	fmt.Fprintln(tw, head)
	for _, raw := range items {
		var n v1alpha1.NodeVM
		if err := json.Unmarshal(raw, &n); err != nil {
			return failure(err)
		}
		cpu := n.Usage.CPU.String() + "/" + n.Shape.CPU.String()
		mem := mebibytes(n.Usage.Memory) + "/" + mebibytes(n.Shape.Memory)
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s", n.Name, n.Class, dash(n.ShapeName), cpu, mem, len(n.Replicas), n.State, age(n.StartedAt))
		if wide {
			ids := make([]string, len(n.Replicas))
			for i, r := range n.Replicas {
				ids[i] = r.ID
			}
			line += "\t" + dash(strings.Join(ids, ","))
		}
		fmt.Fprintln(tw, line)
	}
	return nil
}
