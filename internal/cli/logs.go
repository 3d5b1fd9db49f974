package cli

import (
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"
)

func newLogs(s Streams) *cobra.Command {
	var (
		instance string
		follow   bool
	)
	cmd := &cobra.Command{
		Use:   "logs NAME [--instance ID] [-f]",
		Short: "Print an instance's output (stdout and stderr)",
		Example: `  strata logs web
  strata logs web --instance web-2 -f`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			q := map[string]string{"instance": instance}
			if follow {
				q["follow"] = "true"
			}
			body, err := cl.Stream(c.Context(), http.MethodGet, "workloads/"+args[0]+"/logs", q, nil)
			if err != nil {
				return failure(err)
			}
			defer body.Close()
			if _, err := io.Copy(s.Out, body); err != nil && c.Context().Err() == nil {
				return failure(fmt.Errorf("read logs: %w", err))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&instance, "instance", "", "instance ID, NAME-SLOT: an instance of NAME only (default: NAME-0)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what the instance writes")
	return cmd
}
