package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"strata.dev/strata/api/wire"
)

// exitCodeError carries the exit code of a command run by exec.
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("the command exited with code %d", e.code) }

func newExec(s Streams) *cobra.Command {
	var instance string
	cmd := &cobra.Command{
		Use:   "exec NAME [--instance ID] -- CMD [ARG...]",
		Short: "Run a command inside an instance (containers, sandboxes, image VMs)",
		Long: `Exec runs a command inside a running instance, with its root filesystem, environment and
namespaces, prints its output, and exits with the command's exit code.`,
		Example: `  strata exec web -- cat /etc/hostname
  strata exec web --instance web-1 -- sh -c 'wget -qO- localhost:8080/healthz'`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			if c.ArgsLenAtDash() != 1 {
				return fmt.Errorf("put the command after --: strata exec %s -- CMD", args[0])
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(wire.ExecRequest{Command: args[1:]})
			rd, err := cl.Stream(c.Context(), http.MethodPost, "workloads/"+args[0]+"/exec", map[string]string{"instance": instance}, bytes.NewReader(body))
			if err != nil {
				return failure(err)
			}
			defer rd.Close()
			var res wire.ExecResult
			if err := json.NewDecoder(io.LimitReader(rd, 16<<20)).Decode(&res); err != nil {
				return failure(fmt.Errorf("read the result: %w", err))
			}
			_, _ = io.WriteString(s.Out, res.Stdout)
			_, _ = io.WriteString(s.Err, res.Stderr)
			if res.ExitCode != 0 {
				return exitCodeError{res.ExitCode}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&instance, "instance", "", "instance ID, NAME-SLOT: an instance of NAME only (default: NAME-0)")
	return cmd
}
