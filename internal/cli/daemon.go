package cli

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"strata.dev/strata/internal/client"
)

// socketFlag adds the flags shared by every command that talks to the daemon: --socket
// for its unix socket, and --server, --token-file and --ca-file for its TCP listener.
func socketFlag(cmd *cobra.Command) *string {
	def := os.Getenv("STRATA_SOCKET")
	if def == "" {
		def = client.DefaultSocket
	}
	pf := cmd.PersistentFlags()
	pf.String("server", os.Getenv("STRATA_SERVER"), "the daemon's TCP listener, https://HOST:PORT, instead of the socket (or set STRATA_SERVER)")
	pf.String("token-file", os.Getenv("STRATA_TOKEN_FILE"), "file holding the bearer token for --server (or set STRATA_TOKEN_FILE, or the token itself in STRATA_TOKEN)")
	pf.String("ca-file", os.Getenv("STRATA_CA_FILE"), "the daemon's CA certificate for --server, DATA_DIR/tls/ca.crt on its host (or set STRATA_CA_FILE)")
	return pf.String("socket", def, "the daemon's unix socket (or set STRATA_SOCKET)")
}

// newClientFor checks a command's -o flag (table or json, see checkOutput) before it
// connects to the daemon, so that a bad flag fails before any request.
func newClientFor(cmd *cobra.Command, output string) (*client.Client, error) {
	if err := checkOutput(output); err != nil {
		return nil, err
	}
	return newClient(cmd)
}

// newClient returns a client for the daemon the flags select: its TCP listener when
// --server is given, else its unix socket.
func newClient(cmd *cobra.Command) (*client.Client, error) {
	server, _ := cmd.Flags().GetString("server")
	if server == "" {
		sock, _ := cmd.Flags().GetString("socket")
		return client.NewUnix(sock), nil
	}
	if cmd.Flags().Changed("socket") {
		return nil, errors.New("give --socket or --server, not both")
	}
	token := os.Getenv("STRATA_TOKEN")
	if path, _ := cmd.Flags().GetString("token-file"); path != "" {
		t, err := client.ReadTokenFile(path)
		if err != nil {
			return nil, err
		}
		token = t
	}
	ca, _ := cmd.Flags().GetString("ca-file")
	return client.NewTLS(server, ca, token)
}
