package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/assess"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/importer"
	"strata.dev/strata/internal/load"
)

func newValidate(s Streams) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "validate -f FILE...",
		Short: "Check strata documents: structure, values and policy expressions",
		Long: `Validate reads strata documents (Workload, Segment, Fleet, AssessmentPolicy) strictly and
reports every problem of every file at once, each as

  FILE:LINE:COL: field.path: what is wrong (what to do)

Unknown fields, values of the wrong type, bad quantities, names that are not DNS labels,
values outside their enum, and CEL rules that do not compile are all errors. A directory
stands for the .yaml, .yml and .json files in it; "-" reads standard input.

Exit status: 0 when everything is valid, 2 when anything is not.`,
		Example: `  strata validate -f app.yaml
  strata validate -f deploy/ -f policy.yaml
  cat app.yaml | strata validate -f -`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if len(files) == 0 {
				return fmt.Errorf("give at least one file with -f")
			}
			paths, err := importer.Inputs(files)
			if err != nil {
				return reportProblems(s.Err, diag.List{{Msg: err.Error(), Hint: "check the path"}})
			}
			var errs diag.List
			count := 0
			for _, p := range paths {
				data, err := load.ReadInput(p, s.In)
				if err != nil {
					errs = append(errs, &diag.Error{File: p, Msg: err.Error(), Hint: "check the file name and its permissions"})
					continue
				}
				objs, ferrs := load.File(p, data)
				errs = append(errs, ferrs...)
				if len(objs) == 0 && len(ferrs) == 0 {
					errs = append(errs, &diag.Error{File: p, Msg: "no documents: the input is empty or holds only comments",
						Hint: "give a file of strata documents"})
				}
				for _, o := range objs {
					if _, ok := o.Object.(*v1alpha1.AssessmentPolicy); ok {
						_, perrs := assess.CompileObject(o, data)
						errs = append(errs, perrs...)
					}
				}
				count += len(objs)
			}
			if err := reportProblems(s.Err, errs); err != nil {
				return err
			}
			fmt.Fprintf(s.Err, "%d %s valid in %d %s\n", count, plural(count, "document", "documents"), len(paths), plural(len(paths), "file", "files"))
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "file or directory to check (repeatable; - for standard input)")
	return cmd
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
