package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/store"
)

func newBackup(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup (create|list|verify|delete|prune|store)",
		Short: "Back up workloads into a repository, and the daemon's store to a file",
		Long: `backup create takes one consistent point of the workloads named (every pre hook,
then all their instances paused together, copied and resumed, then every post hook),
streams it into a backup repository (see strata repo) with each workload's spec, and
deletes the local copy. strata restore ID brings the workloads back, here or on
another host that connected the repository.

backup store copies the daemon's own store (every object and its status) to a file.`,
		Example: `  strata backup create ledger
  strata backup create web db --group shop --repo offsite
  strata backup list
  strata backup verify 3f2a9c01d4e5b6a7
  strata backup prune --keep-last 3 --keep-daily 7 --dry-run`,
	}
	cmd.AddCommand(newBackupCreate(s), newBackupList(s), newBackupVerify(s), newBackupDelete(s), newBackupPrune(s), newBackupStore(s))
	return cmd
}

func newBackupStore(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "store FILE",
		Short: "Copy the daemon's store (every object and its status) to FILE while it runs",
		Long: `backup store writes a consistent copy of the daemon's store, taken in one read
transaction while the daemon goes on serving, checks that the copy opens, and says what
it holds. Start a daemon from it with strata serve --restore-store FILE.`,
		Example: `  strata backup store /srv/backups/strata-$(date +%F).db`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			path := args[0]
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s exists: choose another file or remove it first", path)
			}
			body, err := cl.Stream(c.Context(), "GET", "store/backup", nil, nil)
			if err != nil {
				return failure(err)
			}
			defer body.Close()
			n, err := writeFileAtomic(path, body)
			if err != nil {
				return failure(err)
			}
			objects, rev, err := checkStoreCopy(c.Context(), path)
			if err != nil {
				_ = os.Remove(path)
				return failure(fmt.Errorf("the copy does not open as a store (%w); nothing was kept", err))
			}
			fmt.Fprintf(s.Out, "store copied to %s: %d bytes, %d objects at revision %d\n", path, n, objects, rev)
			return nil
		},
	}
}

// writeFileAtomic writes r to path through a temporary file in the same directory,
// synced and renamed, so that path holds the whole copy or nothing.
func writeFileAtomic(path string, r io.Reader) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return n, os.Rename(tmp.Name(), path)
}

// checkStoreCopy opens a store file and counts its objects.
func checkStoreCopy(ctx context.Context, path string) (int, uint64, error) {
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	n := 0
	for _, res := range objects.Resources {
		recs, _, err := st.List(ctx, res.Kind)
		if err != nil {
			return 0, 0, err
		}
		n += len(recs)
	}
	return n, st.Revision(), nil
}
