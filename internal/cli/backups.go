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

func checkOutput(output string) error {
	if output != "table" && output != "json" {
		return fmt.Errorf("unknown output format %q: use table or json", output)
	}
	return nil
}

// outputFlag adds -o table|json to cmd; newClientFor checks it.
func outputFlag(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVarP(output, "output", "o", "table", "output format: table or json")
}

// writeAs prints v for -o output: as JSON, or as table writes it.
func writeAs(out io.Writer, output string, v any, table func(io.Writer) error) error {
	if output == "json" {
		return writeJSON(out, v)
	}
	return table(out)
}

// repoFlag adds --repo to cmd, for the commands that work on a backup repository.
func repoFlag(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVar(name, "repo", "", "the repository (default: default)")
}

func newBackupCreate(s Streams) *cobra.Command {
	var group, repoName, output string
	var forceRead bool
	cmd := &cobra.Command{
		Use:   "create WORKLOAD... [--group NAME] [--repo NAME] [--force-read] [-o table|json]",
		Short: "Back up workloads together, at one point in time, into a repository",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClientFor(c, output)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Err, "backing up %s...\n", strings.Join(args, ", "))
			var last time.Time
			progress := func(p v1alpha1.BackupProgress) {
				if time.Since(last) < time.Second && p.Bytes < p.Total {
					return
				}
				last = time.Now()
				fmt.Fprintf(s.Err, "  %s of %s: %s unchanged, %s read (%s)\n", mebibytesOf(p.Bytes), mebibytesOf(p.Total),
					mebibytesOf(p.Unchanged), mebibytesOf(p.Read), p.File)
			}
			req := v1alpha1.BackupRequest{Workloads: args, Group: group, Repo: repoName, ForceRead: forceRead}
			b, err := cl.Backup(c.Context(), req, progress)
			if err != nil {
				return apiFailure(fmt.Errorf("backup of %s: %w", strings.Join(args, ", "), err))
			}
			return writeAs(s.Out, output, b, func(out io.Writer) error { return describeBackup(out, b) })
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "the backup's group (retention and drills); default: the workloads' names")
	cmd.Flags().BoolVar(&forceRead, "force-read", false, "read every file, even those unchanged since the last backup")
	repoFlag(cmd, &repoName)
	outputFlag(cmd, &output)
	return cmd
}

func describeBackup(out io.Writer, b *v1alpha1.Backup) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Backup:\t%s in %s\n", b.ID, b.Repo)
	fmt.Fprintf(tw, "Time:\t%s\n", b.Time.Local().Format(time.RFC3339))
	fmt.Fprintf(tw, "Workloads:\t%s\n", strings.Join(b.Workloads, ", "))
	fmt.Fprintf(tw, "Group:\t%s\n", b.Group)
	point := "one point (instances paused together)"
	if !b.FrozenTogether {
		point = "copied one after another"
	}
	fmt.Fprintf(tw, "Consistency:\t%s, %s\n", b.Consistency, point)
	fmt.Fprintf(tw, "Size:\t%s: %s unchanged, %s read (%s new in the repository)\n", mebibytesOf(b.Size),
		mebibytesOf(b.UnchangedBytes), mebibytesOf(b.ReadBytes), mebibytesOf(b.StoredBytes))
	if b.Seconds > 0 {
		fmt.Fprintf(tw, "Took:\t%s\n", seconds(b.Seconds))
	}
	for _, w := range b.Warnings {
		fmt.Fprintf(tw, "Warning:\t%s\n", w)
	}
	return tw.Flush()
}

func seconds(f float64) time.Duration {
	return time.Duration(f * float64(time.Second)).Round(time.Millisecond)
}

func newBackupList(s Streams) *cobra.Command {
	var repoName, output string
	cmd := &cobra.Command{
		Use:   "list [--repo NAME] [-o table|json]",
		Short: "List the backups in a repository; -o json prints {\"items\": [...]}",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := newClientFor(c, output)
			if err != nil {
				return err
			}
			list, err := cl.Backups(c.Context(), repoName)
			if err != nil {
				return apiFailure(err)
			}
			if list == nil {
				list = []v1alpha1.Backup{}
			}
			return writeAs(s.Out, output, map[string]any{"items": list}, func(out io.Writer) error { return printBackups(out, list) })
		},
	}
	repoFlag(cmd, &repoName)
	outputFlag(cmd, &output)
	return cmd
}

func printBackups(out io.Writer, list []v1alpha1.Backup) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tGROUP\tWORKLOADS\tSIZE\tSTORED\tCONSISTENCY")
	for _, b := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.Time.Local().Format(time.DateTime), b.Group,
			strings.Join(b.Workloads, ","), mebibytesOf(b.Size), mebibytesOf(b.StoredBytes), b.Consistency)
	}
	return tw.Flush()
}

func newBackupVerify(s Streams) *cobra.Command {
	var repoName string
	cmd := &cobra.Command{
		Use:   "verify ID [--repo NAME]",
		Short: "Read a backup back and check every chunk and file",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			res, err := cl.VerifyBackup(c.Context(), repoName, args[0])
			if err != nil {
				return apiFailure(err)
			}
			if !res.OK {
				for _, p := range res.Problems {
					fmt.Fprintln(s.Out, p)
				}
				return failure(fmt.Errorf("backup %s is damaged: %d problems (restoring it would fail on the files listed)", res.ID, len(res.Problems)))
			}
			fmt.Fprintf(s.Out, "backup %s verified: %d files, %d chunks, %s, all intact\n", res.ID, res.Files, res.Chunks, mebibytesOf(res.Bytes))
			return nil
		},
	}
	repoFlag(cmd, &repoName)
	return cmd
}

func newBackupDelete(s Streams) *cobra.Command {
	var repoName string
	cmd := &cobra.Command{
		Use:   "delete ID [--repo NAME]",
		Short: "Delete a backup (its data goes at the next prune)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			if err := cl.DeleteBackup(c.Context(), repoName, args[0]); err != nil {
				return apiFailure(err)
			}
			fmt.Fprintf(s.Out, "backup %s deleted\n", args[0])
			return nil
		},
	}
	repoFlag(cmd, &repoName)
	return cmd
}

func newBackupPrune(s Streams) *cobra.Command {
	var (
		req    v1alpha1.BackupPruneRequest
		output string
	)
	cmd := &cobra.Command{
		Use:   "prune --keep-last N --keep-hourly N --keep-daily N --keep-weekly N [--dry-run] [--repo NAME]",
		Short: "Delete the backups a retention does not keep, per group, and the data only they used",
		Long: `prune keeps, in each group of backups, the newest --keep-last, and the newest backup of
each of the last --keep-hourly hours, --keep-daily days and --keep-weekly weeks that have
one (UTC); it deletes the others and the chunks no backup uses any more. A retention that
keeps nothing is refused. --dry-run says what would go.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := newClientFor(c, output)
			if err != nil {
				return err
			}
			res, err := cl.PruneBackups(c.Context(), req)
			if err != nil {
				return apiFailure(err)
			}
			return writeAs(s.Out, output, res, func(out io.Writer) error { return printPruned(out, res) })
		},
	}
	f := cmd.Flags()
	f.IntVar(&req.KeepLast, "keep-last", 0, "keep the newest N backups of each group")
	f.IntVar(&req.KeepHourly, "keep-hourly", 0, "keep the newest backup of each of the last N hours")
	f.IntVar(&req.KeepDaily, "keep-daily", 0, "keep the newest backup of each of the last N days")
	f.IntVar(&req.KeepWeekly, "keep-weekly", 0, "keep the newest backup of each of the last N weeks")
	f.BoolVar(&req.DryRun, "dry-run", false, "only say what would be deleted")
	repoFlag(cmd, &req.Repo)
	outputFlag(cmd, &output)
	return cmd
}

// printPruned says what a prune deleted (or would delete) and kept.
func printPruned(out io.Writer, res *v1alpha1.BackupPruneResult) error {
	verb := "deleted"
	if res.DryRun {
		verb = "would delete"
	}
	for _, b := range res.Deleted {
		fmt.Fprintf(out, "%s %s (%s, %s)\n", verb, b.ID, b.Group, b.Time.Local().Format(time.DateTime))
	}
	fmt.Fprintf(out, "kept %d backups, %s %d", len(res.Kept), verb, len(res.Deleted))
	if !res.DryRun {
		fmt.Fprintf(out, ", freed %s", mebibytesOf(res.FreedBytes))
	}
	fmt.Fprintln(out)
	return nil
}

func newRestore(s Streams) *cobra.Command {
	var (
		req    v1alpha1.RestoreRequest
		output string
	)
	cmd := &cobra.Command{
		Use:   "restore ID [--as NAME] [--segment S] [--workload W]... [--repo NAME]",
		Short: "Recreate the workloads of a backup, with their data",
		Long: `restore recreates each workload of the backup from the spec it was backed up with,
held so that nothing starts, puts its disks and volumes in place, and lets it start.
It never replaces a workload: a name in use is refused; restore under another name with
--as (with several workloads --as is a suffix: each comes back as NAME-AS).
--segment puts the workloads on another segment; --workload restores only some.`,
		Example: `  strata restore 3f2a9c01d4e5b6a7
  strata restore 3f2a9c01d4e5b6a7 --as ledger-copy --segment scratch
  strata restore 3f2a9c01d4e5b6a7 --workload db --repo offsite`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClientFor(c, output)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Err, "restoring backup %s...\n", args[0])
			res, err := cl.RestoreBackup(c.Context(), args[0], req)
			if err != nil {
				return apiFailure(fmt.Errorf("restore of backup %s: %w", args[0], err))
			}
			return writeAs(s.Out, output, res, func(out io.Writer) error { return printRestored(out, res) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.As, "as", "", "the restored workload's name (with several workloads: a suffix, NAME-AS)")
	f.StringVar(&req.Segment, "segment", "", "the segment to restore into (default: the saved spec.segment)")
	f.StringSliceVar(&req.Workloads, "workload", nil, "restore only this workload of the backup (repeatable)")
	repoFlag(cmd, &req.Repo)
	outputFlag(cmd, &output)
	return cmd
}

// printRestored says which workloads a restore brought back, under which names.
func printRestored(out io.Writer, res *v1alpha1.RestoreResult) error {
	for _, w := range res.Workloads {
		if w.From == w.Name {
			fmt.Fprintf(out, "restored %s (%s)\n", w.Name, w.Tier)
		} else {
			fmt.Fprintf(out, "restored %s as %s (%s)\n", w.From, w.Name, w.Tier)
		}
	}
	fmt.Fprintf(out, "backup %s of %s restored in %s\n", res.Backup, res.Time.Local().Format(time.DateTime), seconds(res.Seconds))
	return nil
}

func newDrill(s Streams) *cobra.Command {
	var repoName, output string
	cmd := &cobra.Command{
		Use:   "drill GROUP|WORKLOAD [--repo NAME] [-o table|json]",
		Short: "Restore the latest backup into a scratch segment, check it runs, measure RTO and RPO, and remove it",
		Long: `drill proves that a backup restores: it restores the latest backup of the group or
workload into a new scratch segment (drill-XXXX: no egress, no flows in) under scratch
names, waits until the restored workloads run and pass their health checks, and reports
the recovery time (RTO: from the start until healthy) and the recovery point (RPO: the
backup's age). Then it deletes everything it made: workloads, segment, disks and volumes.
The result is recorded as a DrillSucceeded or DrillFailed event on the workloads.`,
		Example: `  strata drill ledger
  strata drill shop --repo offsite -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClientFor(c, output)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Err, "drilling a restore of %s...\n", args[0])
			res, err := cl.Drill(c.Context(), v1alpha1.DrillRequest{Target: args[0], Repo: repoName})
			if err != nil {
				return apiFailure(fmt.Errorf("drill of %s: %w", args[0], err))
			}
			err = writeAs(s.Out, output, res, func(out io.Writer) error {
				fmt.Fprintf(out, "drill of %s from backup %s: %s\n", args[0], res.Backup, res.Result)
				fmt.Fprintf(out, "RTO %s, RPO %s, workloads %s\n", seconds(res.RTOSeconds), seconds(res.RPOSeconds), strings.Join(res.Workloads, ", "))
				if res.Message != "" {
					fmt.Fprintln(out, res.Message)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if res.Result != v1alpha1.DrillSucceeded {
				return failure(fmt.Errorf("drill of %s failed: %s", args[0], res.Message))
			}
			return nil
		},
	}
	repoFlag(cmd, &repoName)
	outputFlag(cmd, &output)
	return cmd
}
