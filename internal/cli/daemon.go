package cli

import (
	"os"

	"github.com/spf13/cobra"

	"strata.dev/strata/internal/client"
)

// socketFlag adds the --socket flag shared by every command that talks to the daemon.
func socketFlag(cmd *cobra.Command) *string {
	def := os.Getenv("STRATA_SOCKET")
	if def == "" {
		def = client.DefaultSocket
	}
	return cmd.PersistentFlags().String("socket", def, "the daemon's unix socket (or set STRATA_SOCKET)")
}
