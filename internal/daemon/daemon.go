// Package daemon wires strata serve together: the store, the runtime drivers, the
// network (netseg's manager and hostnet), the controllers (control), the event recorder
// and the API server, in one process. It holds no domain logic of its own: what turns
// objects into host state lives in the packages it wires.
package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/backup"
	"strata.dev/strata/internal/control"
	"strata.dev/strata/internal/events"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/metrics"
	"strata.dev/strata/internal/netseg"
	"strata.dev/strata/internal/netseg/hostnet"
	"strata.dev/strata/internal/runtime"
	ctrd "strata.dev/strata/internal/runtime/containerd"
	"strata.dev/strata/internal/runtime/imagetar"
	"strata.dev/strata/internal/runtime/nodevm"
	"strata.dev/strata/internal/runtime/qemu"
	"strata.dev/strata/internal/server"
	"strata.dev/strata/internal/snapshot"
	"strata.dev/strata/internal/store"
	"strata.dev/strata/internal/ui"
)

// Defaults of Config.
const (
	DefaultDataDir = "/var/lib/strata"
	DefaultSocket  = "/run/strata/strata.sock"
	DefaultRunsc   = "/opt/strata/bin/runsc"
	DefaultRunDir  = "/run/strata"
)

// RunDirFor is the run-time directory of a daemon over dataDir: DefaultRunDir for the
// default data dir, else /run/strata-<12 hex digits of the SHA-256 of dataDir's absolute
// path>, so that daemons over different data dirs keep apart.
func RunDirFor(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	if filepath.Clean(abs) == DefaultDataDir {
		return DefaultRunDir
	}
	sum := sha256.Sum256([]byte(filepath.Clean(abs)))
	return DefaultRunDir + "-" + hex.EncodeToString(sum[:6])
}

// Config configures the daemon.
type Config struct {
	DataDir string
	Socket  string
	// ContainerdSocket is the containerd to use; empty with StartContainerd starts a private one.
	ContainerdSocket string
	StartContainerd  bool
	// Runsc is gVisor's runsc; empty: DefaultRunsc when it exists (else no sandbox tier).
	Runsc string
	// RunDir holds the daemon's run-time files, which last until the host reboots: the
	// network namespace handles of its instances. Default: DefaultRunDir for the default
	// data dir, RunDirFor(DataDir) for another, so that two daemons never share them.
	RunDir string
	// NetNSDir is where instances' network namespaces are mounted (default RunDir/netns).
	NetNSDir string
	// VMAccel is how the vm tier picks its accelerator: auto (default), kvm or tcg
	// (qemu.Config.Accel).
	VMAccel string
	// VMTCGCacheMiB is TCG's translated-code cache per VM (qemu.Config.TCGCacheMiB;
	// 0: the driver's default).
	VMTCGCacheMiB int
	// NodeVMs is whether container and sandbox replicas whose class the host's policy
	// sends into node VMs run there: auto (default: when the vm tier works) or off (no
	// node VMs; such replicas fail, saying why).
	NodeVMs string
	// Fleet, when set, is a file holding a Fleet that lists this host (by its Host
	// object's name): node VMs are of its nodeShapes that fit on the host, with its
	// overheads (docs/node-vms.md, "Placement"). Without it they are of the nodevm
	// driver's default shape.
	Fleet string
	// NodeVMGrace is how long a node VM left empty waits for a replica of its class
	// before it is removed (0: nodevm.DefaultEmptyGrace).
	NodeVMGrace time.Duration
	// Listen, when set, also serves the API on this TCP address over TLS with bearer
	// tokens; the CA, server certificate and token file live under DataDir/tls.
	Listen string
	// GuestKernelDir holds the guest kernel for image and node VMs (default:
	// strata's own in /opt/strata/guest/kernel-strata where built, else
	// Debian's cloud kernel in /opt/strata/guest/kernel); GuestInit is the strata-guest program (default:
	// next to the strata executable).
	GuestKernelDir, GuestInit string
	// RestoreStore, when set, is a copy of a store (strata backup store) that replaces
	// DataDir/strata.db before the daemon opens it; the replaced file is kept aside.
	RestoreStore string
	// AllowPrivilegedPorts lets workloads publish host ports below 1024; without it
	// admission refuses them. Ports a host service listens on are refused either way.
	AllowPrivilegedPorts bool
	// VMImageDirs are directories, besides DataDir/images, that VM kernels, initrds and
	// disks may come from. A relative name in a workload is a file in DataDir/images.
	VMImageDirs []string
	// MaxImageSize caps the size of an imported image tarball and MaxImageUnpacked
	// what its layers unpack to, in bytes: negative takes imagetar's defaults, 0 is
	// no cap.
	MaxImageSize, MaxImageUnpacked int64
	Logger                         *slog.Logger
}

// Run serves until ctx ends. Workloads keep running after it returns.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if cfg.RunDir == "" {
		cfg.RunDir = RunDirFor(cfg.DataDir)
	}
	if cfg.NetNSDir == "" {
		cfg.NetNSDir = filepath.Join(cfg.RunDir, "netns")
	}
	sizing, err := readNodeSizing(cfg.Fleet, control.DefaultHostName())
	if err != nil {
		return err
	}
	for _, d := range []string{cfg.DataDir, cfg.RunDir, filepath.Dir(cfg.Socket)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	storePath := filepath.Join(cfg.DataDir, "strata.db")
	if cfg.RestoreStore != "" {
		if err := restoreStore(cfg.RestoreStore, storePath, log); err != nil {
			return err
		}
	}
	st, err := store.Open(storePath, store.Options{Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()

	address := cfg.ContainerdSocket
	if address == "" && cfg.StartContainerd {
		pc, err := startContainerd(ctx, filepath.Join(cfg.DataDir, "containerd"), log)
		if err != nil {
			return err
		}
		defer func() {
			if err := pc.Stop(); err != nil {
				log.Error("stop containerd", "err", err)
			}
		}()
		address = pc.Address
	}
	runsc := cfg.Runsc
	if runsc == "" {
		if _, err := os.Stat(DefaultRunsc); err == nil {
			runsc = DefaultRunsc
		}
	}
	var missing []v1alpha1.DriverStatus // tiers without a driver, and why
	if runsc == "" {
		log.Warn("no runsc: the sandbox tier is unavailable", "hint", "run `make host-setup` to build it into "+DefaultRunsc)
		missing = append(missing, v1alpha1.DriverStatus{Name: "gvisor", Tiers: []v1alpha1.Tier{v1alpha1.TierSandbox},
			Message: "the sandbox tier is unavailable: no runsc at " + DefaultRunsc + " (run `make host-setup` to build it)"})
	}
	driver, err := ctrd.New(ctx, ctrd.Config{Address: address, StateDir: filepath.Join(cfg.DataDir, "runtime"), Runsc: runsc, Logger: log,
		ImageLimits: imageLimits(cfg.MaxImageSize, cfg.MaxImageUnpacked)})
	if err != nil {
		return fmt.Errorf("containerd at %s: %w (start one, or use --start-containerd)", orDefault(address, ctrd.DefaultAddress), err)
	}
	nm, err := netseg.New(netseg.Options{StateDir: filepath.Join(cfg.DataDir, "network"), NetNSDir: cfg.NetNSDir, Forwarding: true, Logger: log})
	if err != nil {
		_ = driver.Close()
		return fmt.Errorf("network: %w", err)
	}
	netw, err := hostnet.New(hostnet.Options{Manager: nm, Store: st, DataDir: cfg.DataDir, Logger: log})
	if err != nil {
		_ = driver.Close()
		return fmt.Errorf("network: %w", err)
	}
	defer netw.Close()
	all := []runtime.Driver{driver}
	vm, err := qemu.New(ctx, qemu.Config{
		StateDir: filepath.Join(cfg.DataDir, "vm"), KernelDir: cfg.GuestKernelDir, GuestInit: cfg.GuestInit,
		Images: driver, OpenTap: nm.OpenTap, Accel: cfg.VMAccel, TCGCacheMiB: cfg.VMTCGCacheMiB, ProbeCache: filepath.Join(cfg.RunDir, "vm-accel.json"), Logger: log,
	})
	accel := ""
	if err != nil {
		log.Warn("the vm tier is unavailable", "err", err)
		missing = append(missing, v1alpha1.DriverStatus{Name: "qemu", Tiers: []v1alpha1.Tier{v1alpha1.TierVM},
			Message: "the vm tier is unavailable: " + err.Error()})
	} else {
		all = append(all, vm)
		accel = vm.Accel()
	}
	drivers, err := runtime.NewRegistry(all...)
	if err != nil {
		return err
	}
	drivers, err = withNodeVMs(ctx, drivers, cfg, sizing, vm, nm.OpenTap, runsc, log)
	if err != nil {
		_ = drivers.Close()
		return err
	}
	if _, why := drivers.NodeVMs(); why != "" {
		missing = append(missing, v1alpha1.DriverStatus{Name: nodevm.Name, Tiers: []v1alpha1.Tier{v1alpha1.TierContainer, v1alpha1.TierSandbox},
			Message: "no node VMs: " + why + "; replicas whose class the policy sends into node VMs fail"})
	}
	defer drivers.Close()

	rec := events.New(st, nil, 0, log)
	met := metrics.New(metrics.Options{Store: st, StorePath: storePath, Drivers: drivers, Process: true, Logger: log})
	startups := control.NewStartupTimes() // measured here, for the scaler's lead time
	ctrl := control.New(control.Options{Store: st, Drivers: drivers, Network: netw, Events: rec, Logger: log, DataDir: cfg.DataDir,
		ObserveReconcile: met.ObserveReconcile, ObserveProbeFailure: met.ObserveProbeFailure,
		Startups: startups, ObserveStartup: met.ObserveStartup})
	met.WatchQueue(ctrl.QueueDepth)
	segs := control.NewSegments(control.SegmentOptions{Store: st, Network: netw, Events: rec, Logger: log})
	host := control.NewHostReporter(control.HostOptions{Store: st, Drivers: drivers, Missing: missing, Accel: accel, Logger: log})
	met.WatchDrivers(host.LastChecks)
	snaps := snapshot.New(snapshot.Options{Store: st, Drivers: drivers, DataDir: cfg.DataDir, Events: rec, Logger: log})
	backups := backup.New(backup.Options{Store: st, Drivers: drivers, Snapshots: snaps, DataDir: cfg.DataDir, Events: rec, Logger: log,
		ObserveBackup: metrics.NewBackups(met.Registry()).ObserveBackup})
	history := metrics.NewHistory(metrics.HistoryOptions{Store: st, Drivers: drivers, Logger: log})
	interval, err := scalerInterval()
	if err != nil {
		return err
	}
	scaler := control.NewScaler(control.ScalerOptions{Store: st, Usage: history, Events: rec, Logger: log,
		Capacity: control.MachineCapacity(), Interval: interval, ObserveScaling: met.ObserveScaling, Measured: startups})
	capacity := control.MachineCapacity()
	srv := server.New(server.Options{Store: st, Logger: log, Recorder: rec, Ready: readyChecks(host), History: history.Workload, Snapshots: snaps, Backups: backups, Images: driver, DataDir: cfg.DataDir, Drivers: drivers,
		Metrics: met.Handler(), Middleware: met.Middleware, UI: ui.Handler(), Host: hostClaims{m: nm, allowPrivileged: cfg.AllowPrivilegedPorts},
		Capacity: &v1alpha1.Capacity{
			CPU:    *resource.NewMilliQuantity(capacity.CPUMilli, resource.DecimalSI),
			Memory: *resource.NewQuantity(capacity.MemoryBytes, resource.BinarySI),
		},
		VMImageDirs: append([]string{runtime.ImagesDir(cfg.DataDir)}, cfg.VMImageDirs...)})
	l, err := server.ListenUnix(cfg.Socket)
	if err != nil {
		return err
	}
	log.Info("strata serving", "socket", cfg.Socket, "dataDir", cfg.DataDir, "tiers", drivers.Tiers())
	serveTCP, err := listenTLS(cfg, srv, log)
	if err != nil {
		_ = l.Close()
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	wg.Add(7)
	go func() { defer wg.Done(); errc <- backups.RunSchedules(ctx, backupTick()) }()
	go func() { defer wg.Done(); errc <- scaler.Run(ctx) }()
	go func() { defer wg.Done(); errc <- history.Run(ctx) }()
	go func() { defer wg.Done(); errc <- host.Run(ctx) }()
	go func() { defer wg.Done(); errc <- ctrl.Run(ctx) }()
	go func() { defer wg.Done(); errc <- segs.Run(ctx) }()
	go func() { defer wg.Done(); errc <- srv.Serve(ctx, l) }()
	if serveTCP != nil {
		wg.Add(1)
		go func() { defer wg.Done(); errc <- serveTCP(ctx) }()
	}
	err = <-errc
	cancel()
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("strata stopped; workloads keep running")
	return err
}

// Values of Config.NodeVMs.
const (
	NodeVMsAuto = "auto"
	NodeVMsOff  = "off"
)

// withNodeVMs adds the nodevm driver to drivers when cfg asks for node VMs and the vm
// tier works (vm is its driver, nil when it does not), or records why the host runs none.
// The node VMs boot through vm and keep their containers' records under
// DATA_DIR/nodevm; sandboxes in them need runsc. openTap opens a replica's tap, which
// the driver plugs into its node VM as the replica's NIC on its segment.
func withNodeVMs(ctx context.Context, drivers *runtime.Registry, cfg Config, sizing nodeSizing, vm *qemu.Driver, openTap func(string) (*os.File, error), runsc string, log *slog.Logger) (*runtime.Registry, error) {
	switch cfg.NodeVMs {
	case "", NodeVMsAuto:
	case NodeVMsOff:
		return drivers.WithoutNodeVMs("node VMs are off (--node-vms=off)"), nil
	default:
		return drivers, fmt.Errorf("--node-vms %q: want auto or off", cfg.NodeVMs)
	}
	if vm == nil {
		log.Warn("node VMs are unavailable: the vm tier does not work")
		return drivers.WithoutNodeVMs("the vm tier, which boots node VMs, does not work on this host (see strata get hosts)"), nil
	}
	tools := guest.DefaultNodeTools()
	tools.Runsc = runsc
	if _, err := os.Stat(tools.Crun); err != nil {
		log.Warn("node VMs are unavailable: no crun to put into them", "err", err)
		return drivers.WithoutNodeVMs("no crun on the host to put into node VMs (" + err.Error() + "; make host-setup installs it)"), nil
	}
	nd, err := nodevm.New(ctx, nodevm.Config{
		QEMU: vm, StateDir: filepath.Join(cfg.DataDir, "nodevm"), Tools: tools, OpenTap: openTap, Logger: log,
		Shapes: sizing.shapes, HostCapacity: sizing.host, Overheads: sizing.overheads, EmptyGrace: cfg.NodeVMGrace,
	})
	if err != nil {
		log.Warn("node VMs are unavailable", "err", err)
		return drivers.WithoutNodeVMs(err.Error()), nil
	}
	with, err := drivers.WithNodeVMs(nd)
	if err != nil {
		_ = nd.Close()
		return drivers, err
	}
	log.Info("node VMs run the classes the policy sends there", "tiers", nd.Capabilities().Tiers, "sizes", sizing.from)
	return with, nil
}

// listenTLS opens the TCP listener of cfg.Listen with the TLS material and token file
// under DataDir/tls (created on first start); nil when cfg.Listen is empty.
func listenTLS(cfg Config, srv *server.Server, log *slog.Logger) (func(context.Context) error, error) {
	if cfg.Listen == "" {
		return nil, nil
	}
	dir := filepath.Join(cfg.DataDir, "tls")
	mat, err := server.EnsureTLS(server.TLSOptions{Dir: dir, Listen: cfg.Listen})
	if err != nil {
		return nil, fmt.Errorf("TLS for --listen: %w", err)
	}
	tokens, err := server.OpenTokens(filepath.Join(dir, server.TokensFile), server.TokensOptions{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("tokens for --listen: %w", err)
	}
	tl, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	log.Info("strata serving TLS", "listen", tl.Addr().String(), "ca", mat.CAFile, "caSHA256", mat.Fingerprint(),
		"newCA", mat.CreatedCA, "newCert", mat.IssuedCert, "tokens", tokens.Path())
	return func(ctx context.Context) error { return srv.ServeTLS(ctx, tl, mat.ServerConfig(), tokens) }, nil
}

// ScalerIntervalEnv is a test knob: a duration (such as 2s) that replaces the scaler's
// decision interval (control.DefaultScalerInterval), so that end-to-end tests see scaling
// within seconds. It is not meant for production.
const ScalerIntervalEnv = "STRATA_SCALER_INTERVAL"

// scalerInterval reads ScalerIntervalEnv; 0 when it is unset (the scaler's default).
func scalerInterval() (time.Duration, error) {
	v := os.Getenv(ScalerIntervalEnv)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 2s, or leave it unset", ScalerIntervalEnv, v)
	}
	return d, nil
}

// BackupTickEnv is a test knob: a duration (such as 1s) that replaces how often the
// daemon looks for due scheduled backups (backup.DefaultScheduleTick). It is not meant for
// production.
const BackupTickEnv = "STRATA_BACKUP_TICK"

// backupTick reads BackupTickEnv; 0 (the default) when it is unset or not a positive
// duration.
func backupTick() time.Duration {
	d, err := time.ParseDuration(os.Getenv(BackupTickEnv))
	if err != nil || d <= 0 {
		return 0
	}
	return d
}

// readyChecks serves the host reporter's readiness checks as /readyz's.
func readyChecks(h *control.HostReporter) func(context.Context) []server.Check {
	return func(ctx context.Context) []server.Check {
		var out []server.Check
		for _, c := range h.Ready(ctx) {
			out = append(out, server.Check(c))
		}
		return out
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// imageLimits turns the daemon's image caps (negative: the default, 0: no cap) into
// the driver's (0: the default, negative: no cap).
func imageLimits(size, unpacked int64) imagetar.Limits {
	conv := func(v int64) int64 {
		switch {
		case v < 0:
			return 0
		case v == 0:
			return -1
		}
		return v
	}
	return imagetar.Limits{MaxSize: conv(size), MaxUnpacked: conv(unpacked)}
}
