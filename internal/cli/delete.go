package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/importer/convert"
	"strata.dev/strata/internal/objects"
)

func newDelete(s Streams) *cobra.Command {
	var (
		files   []string
		force   bool
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "delete (-f FILE... | workload NAME | segment NAME)",
		Short: "Delete workloads or segments",
		Long: `Delete removes objects from the daemon. A workload's instances are stopped first (each
gets SIGTERM and its grace period); then the workload is gone. Delete waits for that unless
--wait=false. Name the objects, or give the files they were applied from. A segment that
still has workloads is not deleted (the error names them); from files, workloads are deleted
before segments, so a file that holds both goes whole. Files that strata import reads
(compose files, manifests, vInfo CSV) stand for the documents import writes for them.`,
		Example: `  strata delete workload payments
  strata delete -f app.yaml

  # What strata apply -f compose.yaml applied
  strata delete -f compose.yaml`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			type target struct{ plural, name string }
			var targets []target
			switch {
			case len(files) > 0 && len(args) == 0:
				// The objects apply would apply: strata documents, or what import makes of the rest.
				r, errs := convert.Read(files, s.In, convert.Options{})
				for _, o := range r.Objects {
					res, name, _ := resourceOf(o)
					targets = append(targets, target{res, name})
				}
				if err := reportProblems(s.Err, errs); err != nil {
					return err
				}
			case len(files) == 0 && len(args) == 2:
				res, ok := objects.ResourceFor(args[0])
				if !ok || res.Kind == objects.KindEvent {
					return fmt.Errorf("unknown kind %q: use workload or segment", args[0])
				}
				targets = append(targets, target{res.Plural, args[1]})
			default:
				return fmt.Errorf("give -f FILE..., or a kind and a name (strata delete workload NAME)")
			}
			// Workloads first: a segment is deleted only once no workload is on it.
			rank := func(t target) int {
				if t.plural == "workloads" {
					return 0
				}
				return 1
			}
			slices.SortStableFunc(targets, func(a, b target) int { return cmp.Compare(rank(a), rank(b)) })
			failed := 0
			var deleted []target
			for _, t := range targets {
				if err := cl.Delete(c.Context(), t.plural, t.name, force); err != nil {
					failed++
					fmt.Fprintf(s.Err, "%s/%s: %v\n", singular(t.plural), t.name, err)
					continue
				}
				deleted = append(deleted, t)
			}
			// A workload goes once its instances are stopped: wait for that.
			deadline := time.Now().Add(timeout)
			for _, t := range deleted {
				gone := !wait
				for !gone && time.Now().Before(deadline) {
					var obj json.RawMessage
					if err := cl.Get(c.Context(), t.plural, t.name, &obj); client.IsNotFound(err) {
						gone = true
						break
					}
					select {
					case <-c.Context().Done():
						return failure(c.Context().Err())
					case <-time.After(200 * time.Millisecond):
					}
				}
				if !gone {
					failed++
					fmt.Fprintf(s.Err, "%s/%s: still being deleted after %v (its instances are stopping; see strata describe %s %s)\n",
						singular(t.plural), t.name, timeout, singular(t.plural), t.name)
					continue
				}
				fmt.Fprintf(s.Out, "%s/%s deleted\n", singular(t.plural), t.name)
			}
			if failed > 0 {
				return failure(fmt.Errorf("%d of %d objects not deleted", failed, len(targets)))
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "file or directory whose objects to delete")
	cmd.Flags().BoolVar(&force, "force", false, "remove workloads at once; the daemon stops their instances afterwards")
	cmd.Flags().BoolVar(&wait, "wait", true, "wait until each workload's instances are stopped and it is gone")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long --wait waits")
	return cmd
}
