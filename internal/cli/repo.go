package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/backup/repo"
)

func newRepo(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo (init|connect|list|locks|unlock)",
		Short: "Create and connect backup repositories",
		Long: `A backup repository holds backups of workloads, deduplicated, compressed and
encrypted, in a directory or an S3 bucket:

  file:///absolute/path
  s3://bucket[/prefix]?endpoint=host:port[&insecure=true][&region=name]

S3 credentials come from the daemon's environment (STRATA_S3_ACCESS_KEY and
STRATA_S3_SECRET_KEY), never from the URL.

init creates a repository and a new key, which the daemon keeps in
DATA_DIR/backup/keys/NAME.key (mode 0600). The key is the only way to read the backups:
keep a copy of that file somewhere safe, away from the repository. connect opens a
repository that another daemon created, with a copy of its key file, so that this host
can list and restore its backups; with --read-only it needs no write access to the
storage (a restore host with read-only credentials, say).

Operations lock the repository while they run: backups, restores and verifies share it,
deletes and prunes take it alone, so two daemons (or two hosts) never delete what the
other is still writing. A process that dies leaves its lock behind; it stops counting
once it is stale (at once on the same host, after 30 minutes elsewhere). locks lists the
locks and unlock removes the stale ones.`,
		Example: `  strata repo init file:///srv/backups
  strata repo init 's3://strata/host1?endpoint=s3.example.net' --name offsite
  strata repo connect file:///srv/backups --key-file default.key --name host1
  strata repo connect 's3://strata/host1?endpoint=s3.example.net' --key-file host1.key --read-only
  strata repo list
  strata repo locks --repo offsite
  strata repo unlock --repo offsite`,
	}
	cmd.AddCommand(newRepoInit(s), newRepoConnect(s), newRepoList(s), newRepoLocks(s), newRepoUnlock(s))
	return cmd
}

func newRepoInit(s Streams) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "init URL [--name NAME]",
		Short: "Create a backup repository and its key",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			info, err := cl.InitBackupRepo(c.Context(), v1alpha1.BackupRepositoryRequest{Name: name, URL: args[0]}, false)
			if err != nil {
				return apiFailure(err)
			}
			fmt.Fprintf(s.Out, "repository %s created at %s (id %s)\n", info.Name, info.URL, info.ID)
			fmt.Fprintf(s.Out, "its key is in %s on the daemon's host.\n", info.KeyFile)
			fmt.Fprintf(s.Out, "Keep a copy of that file somewhere safe, away from the repository: losing the key loses every backup in it.\n")
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", v1alpha1.DefaultBackupRepository, "the repository's name, for --repo")
	return cmd
}

func newRepoConnect(s Streams) *cobra.Command {
	var name, keyFile string
	var readOnly bool
	cmd := &cobra.Command{
		Use:   "connect URL --key-file FILE [--name NAME] [--read-only]",
		Short: "Open a repository another daemon created, with a copy of its key file",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if keyFile == "" {
				return fmt.Errorf("--key-file is required: the key file `strata repo init` wrote for this repository")
			}
			key, err := repo.ReadKeyFile(keyFile)
			if err != nil {
				return err
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			info, err := cl.InitBackupRepo(c.Context(), v1alpha1.BackupRepositoryRequest{Name: name, URL: args[0], Key: key.Hex(), ReadOnly: readOnly}, true)
			if err != nil {
				return apiFailure(err)
			}
			fmt.Fprintf(s.Out, "repository %s connected: %s (id %s); the daemon keeps its key in %s\n", info.Name, info.URL, info.ID, info.KeyFile)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", v1alpha1.DefaultBackupRepository, "the repository's name, for --repo")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "the repository's key file")
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "connect for listing, restoring and verifying only, taking no locks: for storage this host may not write to (read-only S3 credentials); backups, deletes and prunes through it are refused")
	return cmd
}

func newRepoList(s Streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list [-o table|json]",
		Short: "List the backup repositories the daemon knows",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := newClientFor(c, output)
			if err != nil {
				return err
			}
			list, err := cl.BackupRepos(c.Context())
			if err != nil {
				return apiFailure(err)
			}
			if output == "json" {
				return writeJSON(s.Out, map[string]any{"items": list})
			}
			tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tURL\tID\tHOW\tADDED")
			for _, r := range list {
				how := "connected"
				switch {
				case r.Created:
					how = "created"
				case r.ReadOnly:
					how = "connected, read-only"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.URL, r.ID, how, r.Added.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func newRepoLocks(s Streams) *cobra.Command {
	var output, repoName string
	cmd := &cobra.Command{
		Use:   "locks [--repo NAME] [-o table|json]",
		Short: "List the locks operations hold on a backup repository",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := newClientFor(c, output)
			if err != nil {
				return err
			}
			list, err := cl.RepoLocks(c.Context(), repoName)
			if err != nil {
				return apiFailure(err)
			}
			if output == "json" {
				return writeJSON(s.Out, map[string]any{"items": list})
			}
			if len(list) == 0 {
				fmt.Fprintln(s.Out, "no locks: no operation is running on the repository")
				return nil
			}
			return writeLocks(s, list)
		},
	}
	outputFlag(cmd, &output)
	repoFlag(cmd, &repoName)
	return cmd
}

func newRepoUnlock(s Streams) *cobra.Command {
	var output, repoName, lock string
	cmd := &cobra.Command{
		Use:   "unlock [--repo NAME] [--lock ID] [-o table|json]",
		Short: "Remove the stale locks of a backup repository",
		Long: `unlock removes the locks whose operations are over: not refreshed for longer than
the stale age (30 minutes), or held by a process of this host that is gone. Live locks
stay, and the command lists them.

--lock ID removes one lock even when it looks live. Use it only when you know its holder
is gone (a host that was switched off): removing the lock of a running prune or backup
lets another operation delete data that one still needs.`,
		Example: `  strata repo unlock
  strata repo unlock --repo offsite --lock 3f2a9c...`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := newClientFor(c, output)
			if err != nil {
				return err
			}
			res, err := cl.UnlockRepo(c.Context(), repoName, v1alpha1.RepositoryUnlockRequest{Lock: lock})
			if err != nil {
				return apiFailure(err)
			}
			if output == "json" {
				return writeJSON(s.Out, res)
			}
			fmt.Fprintf(s.Out, "removed %d locks\n", len(res.Removed))
			for _, l := range res.Removed {
				fmt.Fprintf(s.Out, "  %s (%s %s by pid %d on %s)\n", l.Name, l.Kind, l.Op, l.PID, l.Host)
			}
			if len(res.Remaining) == 0 {
				return nil
			}
			fmt.Fprintf(s.Out, "%d locks stay:\n", len(res.Remaining))
			return writeLocks(s, res.Remaining)
		},
	}
	outputFlag(cmd, &output)
	repoFlag(cmd, &repoName)
	cmd.Flags().StringVar(&lock, "lock", "", "remove this one lock (its ID from `strata repo locks`), even a live one")
	return cmd
}

// writeLocks prints locks as a table.
func writeLocks(s Streams, list []v1alpha1.RepositoryLock) error {
	tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LOCK\tKIND\tOP\tHOST\tPID\tTAKEN\tREFRESHED\tSTATE")
	for _, l := range list {
		state := "live"
		switch {
		case l.Error != "":
			state = "unreadable: " + l.Error
		case l.Stale:
			state = "stale: " + l.StaleReason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", strings.TrimPrefix(l.Name, "locks/"), l.Kind, l.Op, l.Host, l.PID,
			l.Taken.Local().Format(time.DateTime), l.Refreshed.Local().Format(time.DateTime), state)
	}
	return tw.Flush()
}
