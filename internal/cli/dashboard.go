package cli

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/daemon"
	"strata.dev/strata/internal/server"
)

func newDashboard(s Streams) *cobra.Command {
	var dataDir, listen string
	cmd := &cobra.Command{
		Use:   "dashboard [--server https://HOST:PORT] [--data-dir DIR] | --listen 127.0.0.1:PORT",
		Short: "Print the address of the daemon's dashboard, with a login token",
		Long: `Dashboard prints the address at which a browser opens strata's dashboard: the topology
of segments, workloads and allowed flows, and each workload's instances, events and log,
updated live.

The dashboard is served by the daemon's TLS listener (strata serve --listen HOST:PORT) at
https://HOST:PORT/ui/. The address printed carries a token in its fragment
(#token=TOKEN), which the browser keeps for the tab and never sends as part of a URL; the
token is the one of --token-file, STRATA_TOKEN, or else the first of DATA_DIR/tls/tokens.
The browser does not know strata's CA: import DATA_DIR/tls/ca.crt or accept the
certificate after checking its fingerprint (the daemon logs it at start).

With --listen 127.0.0.1:PORT it instead serves the dashboard itself, over plain HTTP on
the loopback address given, passing the page's requests to the daemon's unix socket.
It makes a fresh token for this run, prints the address with it, and runs until
interrupted. Only the holder of that token gets past it, and only with the reads the
page makes (lists, watches, usage history, logs); writes, exec and downloads are refused.`,
		Example: `  strata dashboard --server https://127.0.0.1:7443
  strata dashboard --server https://10.0.0.5:7443 --token-file ~/strata.token
  sudo strata dashboard --listen 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if listen != "" {
				sock, _ := c.Flags().GetString("socket")
				ctx, stop := signal.NotifyContext(c.Context(), syscall.SIGINT, syscall.SIGTERM)
				defer stop()
				return proxyDashboard(ctx, s, listen, sock)
			}
			return printDashboardURL(c, s, dataDir)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", daemon.DefaultDataDir, "the daemon's data directory, where tls/tokens and tls/ca.crt are")
	cmd.Flags().StringVar(&listen, "listen", "", "serve the dashboard on this loopback address (HOST:PORT) from the daemon's unix socket")
	return cmd
}

// printDashboardURL prints the TLS listener's dashboard address with a token, after
// checking that the daemon accepts the token.
func printDashboardURL(c *cobra.Command, s Streams, dataDir string) error {
	srv, _ := c.Flags().GetString("server")
	if srv == "" {
		return fmt.Errorf("no daemon address: give its TLS listener, strata dashboard --server https://HOST:PORT " +
			"(the address strata serve --listen was given), or reach the daemon's socket with strata dashboard --listen 127.0.0.1:8080")
	}
	u, err := url.Parse(srv)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("server address %q: give https://HOST:PORT", srv)
	}
	token, err := dashboardToken(c, dataDir)
	if err != nil {
		return failure(err)
	}
	ca, _ := c.Flags().GetString("ca-file")
	if ca == "" {
		ca = filepath.Join(dataDir, "tls", server.CACertFile)
	}
	if _, err := os.Stat(ca); err == nil {
		cl, err := client.NewTLS("https://"+u.Host, ca, token)
		if err != nil {
			return failure(err)
		}
		ctx, cancel := context.WithTimeout(c.Context(), 10*time.Second)
		defer cancel()
		var list json.RawMessage
		if err := cl.List(ctx, "segments", &list); err != nil {
			return failure(fmt.Errorf("check the daemon at %s: %w", u.Host, err))
		}
	} else {
		fmt.Fprintf(s.Err, "note: not checked: no CA certificate at %s (give --ca-file)\n", ca)
	}
	fmt.Fprintf(s.Out, "https://%s%s#token=%s\n", u.Host, server.UIPath, url.QueryEscape(token))
	fmt.Fprintf(s.Err, "Open this address in a browser; it trusts the daemon's certificate once %s is imported as a CA.\n", ca)
	return nil
}

// dashboardToken returns the token of --token-file, else STRATA_TOKEN, else the first of
// the daemon's token file.
func dashboardToken(c *cobra.Command, dataDir string) (string, error) {
	if path, _ := c.Flags().GetString("token-file"); path != "" {
		return client.ReadTokenFile(path)
	}
	if t := os.Getenv("STRATA_TOKEN"); t != "" {
		return t, nil
	}
	path := filepath.Join(dataDir, "tls", server.TokensFile)
	t, err := client.ReadTokenFile(path)
	if err != nil {
		return "", fmt.Errorf("%w (give --token-file, or --data-dir where the daemon keeps tls/tokens)", err)
	}
	return t, nil
}

// proxyDashboard serves the dashboard on a loopback address from the daemon's unix
// socket: the page without a token, the API only to requests with this run's token.
func proxyDashboard(ctx context.Context, s Streams, listen, socket string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: give HOST:PORT, e.g. 127.0.0.1:8080", listen)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--listen %s: the dashboard proxy speaks plain HTTP, so it serves only a loopback address (127.0.0.1, ::1); "+
			"for other hosts run strata serve --listen and strata dashboard --server", listen)
	}
	token, err := server.NewToken()
	if err != nil {
		return failure(err)
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return failure(fmt.Errorf("listen on %s: %w", listen, err))
	}
	hs := &http.Server{Handler: dashboardProxy(socket, token), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	fmt.Fprintf(s.Out, "http://%s%s#token=%s\n", l.Addr(), server.UIPath, token)
	fmt.Fprintf(s.Err, "Serving the dashboard of the daemon at %s until interrupted (Ctrl-C).\n", socket)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return failure(err)
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shut)
		return nil
	}
}

// dashboardProxy passes requests to the daemon on socket: the dashboard's files to
// anyone, and the API reads the page makes (server.IsDashboardRead) only with token.
// Everything else is refused: the socket it forwards to grants root's every power.
func dashboardProxy(socket, token string) http.Handler {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host, r.Out.Host = "http", "strata", "strata"
			r.Out.Header.Del("Authorization") // the socket needs none
		},
		Transport:     tr,
		FlushInterval: -1, // watches stream
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeProxyStatus(w, http.StatusBadGateway, "BadGateway", "the daemon's socket "+socket+" does not answer: is strata serve running? ("+err.Error()+")")
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if server.IsUIRequest(r) {
			rp.ServeHTTP(w, r)
			return
		}
		if !tokenMatches(r.Header.Get("Authorization"), token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
			writeProxyStatus(w, http.StatusUnauthorized, server.ReasonUnauthorized,
				"this dashboard needs the token strata dashboard printed: open the address it printed")
			return
		}
		if !server.IsDashboardRead(r) {
			code, reason := http.StatusForbidden, server.ReasonForbidden
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				code, reason = http.StatusMethodNotAllowed, "MethodNotAllowed"
				w.Header().Set("Allow", "GET, HEAD")
			}
			writeProxyStatus(w, code, reason, "the dashboard proxy passes on only the page's reads (lists, watches, usage history, logs): "+
				"use the strata command on this host for "+r.Method+" "+r.URL.Path)
			return
		}
		rp.ServeHTTP(w, r)
	})
}

func tokenMatches(header, token string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}

func writeProxyStatus(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(server.Status{APIVersion: "v1", Kind: "Status", Code: code, Reason: reason, Message: msg})
}
