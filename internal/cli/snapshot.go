package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"strata.dev/strata/api/v1alpha1"
)

func newSnapshot(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot (create|list|restore|delete)",
		Short: "Take, list, restore and delete local snapshots of workloads' data",
		Long: `A snapshot is a point-in-time copy of a workload's data, kept on this host under the
daemon's data directory (snapshots/WORKLOAD/NAME):

  VMs         each slot's disk, copied while the guest runs; with --memory also the
              guest's memory and devices, so that a restore resumes it where it was
  containers  each slot's volumes, copied while its processes are frozen
  and sandboxes

Snapshots are crash-consistent (as if the power went off) unless the workload has
spec.backup.hooks: their pre command runs in every instance first (a database flush,
say) and the post command after.

Restoring a snapshot taken with --memory replaces the running guests. Any other restore
stops the workload's instances, puts the saved disks or volumes in place and starts
them again. An image VM's root disk starts from its image at every start: restore it
with a --memory snapshot.`,
		Example: `  strata snapshot create ledger --name before-upgrade
  strata snapshot create ledger --memory
  strata snapshot list ledger
  strata snapshot restore ledger before-upgrade
  strata snapshot delete ledger before-upgrade`,
	}
	cmd.AddCommand(newSnapshotCreate(s), newSnapshotList(s), newSnapshotRestore(s), newSnapshotDelete(s))
	return cmd
}

func newSnapshotCreate(s Streams) *cobra.Command {
	var (
		name   string
		memory bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "create WORKLOAD [--name NAME] [--memory] [-o table|json]",
		Short: "Snapshot a workload's running instances",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClientFor(c, output)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Err, "snapshotting %s...\n", args[0])
			var snap v1alpha1.Snapshot
			if err := cl.Snapshot(c.Context(), args[0], name, memory, &snap); err != nil {
				return apiFailure(err)
			}
			return writeAs(s.Out, output, snap, func(out io.Writer) error { return describeSnapshot(out, &snap) })
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the snapshot's name (a DNS label); default: snap-TIME")
	cmd.Flags().BoolVar(&memory, "memory", false, "VMs: also save memory and devices, so a restore resumes the running guest")
	outputFlag(cmd, &output)
	return cmd
}

func newSnapshotList(s Streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list [WORKLOAD] [-o table|json]",
		Short: "List snapshots, of one workload or of all; -o json prints {\"items\": [Snapshot...]}",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClientFor(c, output)
			if err != nil {
				return err
			}
			var list struct {
				Items []v1alpha1.Snapshot `json:"items"`
			}
			if err := cl.List(c.Context(), "snapshots", &list); err != nil {
				return failure(err)
			}
			items := []v1alpha1.Snapshot{}
			for _, sn := range list.Items {
				if len(args) == 0 || sn.Spec.Workload == args[0] {
					items = append(items, sn)
				}
			}
			return writeAs(s.Out, output, map[string]any{"items": items}, func(out io.Writer) error { return printSnapshots(out, items) })
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func printSnapshots(out io.Writer, items []v1alpha1.Snapshot) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tNAME\tTIER\tTAKEN\tMEMORY\tCONSISTENCY\tSLOTS\tSIZE")
	for _, sn := range items {
		st := snapshotStatus(&sn)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\t%d\t%s\n", sn.Spec.Workload, sn.Spec.Name, st.Tier,
			st.Time.Local().Format(time.DateTime), sn.Spec.Memory, st.Consistency, len(st.Slots), mebibytesOf(st.Bytes))
	}
	return tw.Flush()
}

func newSnapshotRestore(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "restore WORKLOAD NAME",
		Short: "Put a snapshot back into its workload (its instances restart from it)",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Err, "restoring %s of %s...\n", args[1], args[0])
			begin := time.Now()
			var snap v1alpha1.Snapshot
			if err := cl.RestoreSnapshot(c.Context(), args[0], args[1], &snap); err != nil {
				return apiFailure(err)
			}
			taken := "?"
			if snap.Status != nil {
				taken = snap.Status.Time.Local().Format(time.DateTime)
			}
			fmt.Fprintf(s.Out, "restored %s of %s (taken %s) in %s\n", args[1], args[0], taken, time.Since(begin).Round(time.Millisecond))
			return nil
		},
	}
}

func newSnapshotDelete(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "delete WORKLOAD NAME",
		Short: "Delete a snapshot and its files",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			if err := cl.DeleteSnapshot(c.Context(), args[0], args[1]); err != nil {
				return apiFailure(err)
			}
			fmt.Fprintf(s.Out, "snapshot %s of %s deleted\n", args[1], args[0])
			return nil
		},
	}
}

// snapshotStatus is sn's status, or an empty one when the daemon sent none.
func snapshotStatus(sn *v1alpha1.Snapshot) v1alpha1.SnapshotStatus {
	if sn.Status == nil {
		return v1alpha1.SnapshotStatus{}
	}
	return *sn.Status
}

func describeSnapshot(out io.Writer, sn *v1alpha1.Snapshot) error {
	st := snapshotStatus(sn)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Snapshot:\t%s of %s\n", sn.Spec.Name, sn.Spec.Workload)
	fmt.Fprintf(tw, "Taken:\t%s\n", st.Time.Local().Format(time.RFC3339))
	fmt.Fprintf(tw, "Tier:\t%s\n", st.Tier)
	fmt.Fprintf(tw, "Consistency:\t%s\n", st.Consistency)
	fmt.Fprintf(tw, "Memory:\t%t\n", sn.Spec.Memory)
	fmt.Fprintf(tw, "Size:\t%s\n", mebibytesOf(st.Bytes))
	for _, sl := range st.Slots {
		fmt.Fprintf(tw, "Slot %d (%s):\t%s\n", sl.Slot, sl.Instance, strings.Join(sl.Files, ", "))
	}
	for _, w := range st.Warnings {
		fmt.Fprintf(tw, "Warning:\t%s\n", w)
	}
	return tw.Flush()
}

func mebibytesOf(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
