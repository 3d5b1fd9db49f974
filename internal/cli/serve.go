package cli

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/internal/daemon"
)

func newServe(s Streams) *cobra.Command {
	var logFile string
	cfg := daemon.Config{MaxImageSize: -1, MaxImageUnpacked: -1}
	cmd := &cobra.Command{
		Use:   "serve [--data-dir DIR] [--socket PATH] [--containerd-socket PATH | --start-containerd] [--listen ADDR]",
		Short: "Run the daemon: API, store, controllers and runtime drivers in one process",
		Long: `Serve runs strata's daemon in the foreground until it gets SIGINT or SIGTERM. It keeps
its store, instance logs, volumes and network state under --data-dir and serves the API on
the unix socket (mode 0600: root only).

Containers and sandboxes run under containerd: an existing one (--containerd-socket), or a
private one that strata starts with its state under the data dir (--start-containerd). The
sandbox tier needs gVisor's runsc (make host-setup builds it into /opt/strata/bin/runsc).
VMs run under QEMU. A /dev/kvm that opens is no proof that KVM works, so at start the daemon
boots a probe guest under KVM (at most 5 s, cached until the host reboots) and uses KVM when
it runs, software emulation (TCG) otherwise; the reason is in the log, /readyz and strata get
hosts. --vm-accel kvm insists on KVM (VMs are refused, saying why, when it does not work);
--vm-accel tcg skips the probe. An image VM boots strata's own guest kernel (make host-setup builds it into
/opt/strata/guest/kernel-strata; until then Debian's cloud kernel in /opt/strata/guest/kernel) with strata-guest as its init (make build puts it next to strata).

Container and sandbox replicas whose isolation class the host's policy sends into node VMs
(by default multi-tenant and regulated classes; placement.nodeVM required or never decides
for one workload) run inside node VMs of their class, booted through the vm tier, one class
per node VM (docs/node-vms.md); strata get nodes lists them. --node-vms auto (the default)
runs them when the vm tier works; --node-vms off runs none: then such replicas fail, saying
why, rather than run on the host's kernel. A replica goes into a node VM of its class where
it fits (its requests against the node VM's shape less what the node VM keeps for itself),
else into a new one; a node VM left empty is removed after --node-vm-grace. Node VMs are of
one CPU and 1Gi, or with --fleet FILE of the nodeShapes of that Fleet, which must list this
host by its name (strata get hosts): a new node VM gets the cheapest shape that holds its
first replica and fits on the host, and the Fleet's overheads apply as strata plan applies
them.

With --listen HOST:PORT it also serves the API over TCP with TLS 1.3, to clients that send
a bearer token. On first start it creates a CA, a server certificate and a token file with
an admin token under DATA_DIR/tls; clients need ca.crt and a token (strata --server
https://HOST:PORT --ca-file ca.crt --token-file FILE). Remove a line of DATA_DIR/tls/tokens
to revoke its token; the daemon notices within a second.

Run-time files (the instances' network namespace handles) live under --run-dir: /run/strata
for the default data dir, /run/strata-HASH for another, so that a second daemon with its own
--data-dir (and --socket) never collides with the first by instance name.

Published ports (spec.ports[].publish) must be 1024 or above unless the daemon runs with
--allow-privileged-ports, and never a port a socket of the host listens on: apply refuses
them, naming the listener.

Workloads outlive the daemon: stop it, upgrade it, kill it; on start it adopts what runs.

The log goes to stderr, or with --log-file FILE to FILE, appended; the file is created
with mode 0600, and an existing one is narrowed to it, since the log names workloads,
clients and paths.

With --restore-store FILE (a copy made by strata backup store) the daemon starts from that
store: the current one is kept aside as strata.db.replaced-TIME, and the controllers make
the host match the restored objects (instances of workloads the copy does not know are
stopped and removed).

Image imports are capped: a tarball larger than --max-image-size, or whose layers unpack to
more than --max-image-unpacked, is refused whole and registers no name.`,
		Example: `  strata serve --start-containerd
  strata serve --data-dir /srv/strata --containerd-socket /run/containerd/containerd.sock
  strata serve --start-containerd --listen 0.0.0.0:7443
  strata serve --start-containerd --restore-store /srv/backups/strata-2026-11-26.db`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			switch cfg.VMAccel {
			case "auto", "kvm", "tcg":
			default:
				return fmt.Errorf("--vm-accel %q: want auto, kvm or tcg\nRun '%s --help' for usage", cfg.VMAccel, c.CommandPath())
			}
			if cfg.VMTCGCacheMiB < 0 {
				return fmt.Errorf("--vm-tcg-cache-mib %d: want a size in MiB, or 0 for the default (16)\nRun '%s --help' for usage", cfg.VMTCGCacheMiB, c.CommandPath())
			}
			switch cfg.NodeVMs {
			case daemon.NodeVMsAuto, daemon.NodeVMsOff:
			default:
				return fmt.Errorf("--node-vms %q: want auto or off\nRun '%s --help' for usage", cfg.NodeVMs, c.CommandPath())
			}
			cfg.Socket, _ = c.Flags().GetString("socket")
			out := s.Err
			if logFile != "" {
				f, err := openLogFile(logFile)
				if err != nil {
					return failure(err)
				}
				defer f.Close()
				out = f
			}
			cfg.Logger = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
			ctx, stop := signal.NotifyContext(c.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if err := daemon.Run(ctx, cfg); err != nil {
				return failure(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.DataDir, "data-dir", daemon.DefaultDataDir, "where the daemon keeps its state")
	cmd.Flags().StringVar(&cfg.ContainerdSocket, "containerd-socket", "", "containerd to use (default: /run/containerd/containerd.sock, unless --start-containerd)")
	cmd.Flags().BoolVar(&cfg.StartContainerd, "start-containerd", false, "start a private containerd under the data dir (or reuse the one an earlier run started)")
	cmd.Flags().StringVar(&cfg.RunDir, "run-dir", "", "where run-time files live (default /run/strata for the default data dir, /run/strata-HASH of the data dir otherwise)")
	cmd.Flags().StringVar(&cfg.NetNSDir, "netns-dir", "", "where instance network namespaces are mounted (default RUN_DIR/netns)")
	cmd.Flags().IntVar(&cfg.VMTCGCacheMiB, "vm-tcg-cache-mib", 0, "TCG's translated-code cache per VM under software emulation, in MiB (0: 16); it stays resident as it fills, a smaller one is flushed more often")
	cmd.Flags().StringVar(&cfg.VMAccel, "vm-accel", "auto", "the vm tier's accelerator: auto (KVM when a probe guest runs under it, else TCG), kvm (refuse VMs when KVM does not work) or tcg")
	cmd.Flags().StringVar(&cfg.NodeVMs, "node-vms", daemon.NodeVMsAuto, "run the container and sandbox replicas whose class the policy sends into node VMs there: auto (when the vm tier works) or off (such replicas fail, saying why)")
	cmd.Flags().StringVar(&cfg.Fleet, "fleet", "", "a file holding a Fleet that lists this host: node VMs are of its nodeShapes that fit on the host, with its overheads (default: one CPU and 1Gi each)")
	cmd.Flags().DurationVar(&cfg.NodeVMGrace, "node-vm-grace", 0, "how long a node VM left empty waits for a replica of its class before it is removed (0: 5m)")
	cmd.Flags().StringVar(&cfg.Listen, "listen", "", "also serve the API on this TCP address (HOST:PORT) over TLS with bearer tokens")
	cmd.Flags().StringVar(&cfg.Runsc, "runsc", "", "gVisor's runsc binary (default "+daemon.DefaultRunsc+" when present)")
	cmd.Flags().StringVar(&cfg.GuestKernelDir, "guest-kernel-dir", "", "the guest kernel for image and node VMs (default: /opt/strata/guest/kernel-strata where built, else /opt/strata/guest/kernel)")
	cmd.Flags().StringVar(&cfg.RestoreStore, "restore-store", "", "start from this copy of a store (strata backup store); the current store is kept aside")
	cmd.Flags().BoolVar(&cfg.AllowPrivilegedPorts, "allow-privileged-ports", false, "let workloads publish host ports below 1024 (ports a host service listens on stay refused)")
	cmd.Flags().StringVar(&logFile, "log-file", "", "append the daemon's log to this file (mode 0600: it names workloads, clients and paths) instead of stderr")
	cmd.Flags().StringArrayVar(&cfg.VMImageDirs, "vm-image-dir", nil, "also let VMs boot kernels, initrds and disks from this directory (repeatable; DATA-DIR/images always)")
	cmd.Flags().StringVar(&cfg.GuestInit, "guest-init", "", "the strata-guest program image VMs boot into (default: next to strata)")
	cmd.Flags().Var((*byteSize)(&cfg.MaxImageSize), "max-image-size",
		"largest image tarball strata image import takes (default 4Gi; 0 is no cap)")
	cmd.Flags().Var((*byteSize)(&cfg.MaxImageUnpacked), "max-image-unpacked",
		"most an imported image's layers may unpack to (default 16Gi; 0 is no cap)")
	return cmd
}

// openLogFile opens path for appending the daemon's log, readable by the daemon's user
// only: created with mode 0600, or narrowed to it when it exists (the shell that made it
// may have used its umask's 0644).
func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--log-file: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--log-file: restrict %s to its owner: %w", path, err)
	}
	return f, nil
}

// byteSize is a flag holding a number of bytes, written as a quantity (4Gi, 500Mi,
// 1000000). Unset, it is -1: the daemon's default.
type byteSize int64

func (b *byteSize) String() string {
	if *b < 0 {
		return ""
	}
	return resource.NewQuantity(int64(*b), resource.BinarySI).String()
}

func (b *byteSize) Set(s string) error {
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() < 0 {
		return fmt.Errorf("%q is not a size: write bytes like 4Gi, 500Mi or 0 for no cap", s)
	}
	*b = byteSize(q.Value())
	return nil
}

func (b *byteSize) Type() string { return "size" }
