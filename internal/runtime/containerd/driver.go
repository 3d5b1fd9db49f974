package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	ctr "github.com/containerd/containerd"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/imagetar"
)

var (
	_ runtime.Driver        = (*Driver)(nil)
	_ runtime.Execer        = (*Driver)(nil)
	_ runtime.ImageImporter = (*Driver)(nil)
	_ runtime.EventSource   = (*Driver)(nil)
	_ runtime.ImageSource   = (*Driver)(nil)
)

// Name is the driver's name.
const Name = "containerd"

// Defaults of Config.
const (
	DefaultAddress     = "/run/containerd/containerd.sock"
	DefaultNamespace   = "strata"
	DefaultSnapshotter = "overlayfs"
)

// shimRuntime is the containerd runtime (shim) both tiers use.
const shimRuntime = "io.containerd.runc.v2"

// Config configures a Driver.
type Config struct {
	// Address is containerd's socket (default DefaultAddress).
	Address string
	// Namespace is the containerd namespace the driver owns (default
	// DefaultNamespace).
	Namespace string
	// StateDir holds runc's and runsc's state (StateDir/runc,
	// StateDir/runsc), the FIFOs of exec'd processes (StateDir/fifo) and
	// the mounts of WithImageRoot (StateDir/views). Required; keep it
	// stable across restarts.
	StateDir string
	// Runsc is the path of gVisor's runsc binary; empty disables the sandbox
	// tier.
	Runsc string
	// Snapshotter unpacks images (default DefaultSnapshotter).
	Snapshotter string
	// DialTimeout bounds the connection to containerd (default 10 s).
	DialTimeout time.Duration
	// Logger receives what the driver notices in the background (default
	// slog.Default()).
	Logger *slog.Logger
	// ImageLimits caps the image tarballs ImportImage takes: their size and
	// what their layers unpack to. Zero fields take imagetar's defaults;
	// a negative field is no cap.
	ImageLimits imagetar.Limits
}

// Driver runs instances as containerd containers. Create it with New.
type Driver struct {
	cfg    Config
	client *ctr.Client
	log    *slog.Logger
	cgroup cgroupLayout

	closeOnce sync.Once
	closed    chan struct{}
	watcher   sync.WaitGroup

	idLocks    sync.Map // instance ID -> *sync.Mutex: serialises Start and Remove of one ID
	imageLocks sync.Map // image name -> *sync.Mutex: one unpack at a time per image

	mu       sync.Mutex
	starting map[string]bool // IDs whose Start is under way
	stopping map[string]int  // IDs with Stop under way, and how many
}

// New connects to containerd and returns a driver. It checks that containerd
// answers and that Config.Runsc, when set, is an executable file.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.Snapshotter == "" {
		cfg.Snapshotter = DefaultSnapshotter
	}
	if cfg.ImageLimits.MaxSize == 0 {
		cfg.ImageLimits.MaxSize = imagetar.DefaultMaxSize
	}
	if cfg.ImageLimits.MaxUnpacked == 0 {
		cfg.ImageLimits.MaxUnpacked = imagetar.DefaultMaxUnpacked
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StateDir == "" || !filepath.IsAbs(cfg.StateDir) {
		return nil, fmt.Errorf("containerd driver: state dir %q: want an absolute path", cfg.StateDir)
	}
	if cfg.Runsc != "" {
		if err := runtime.CheckExecutable(cfg.Runsc); err != nil {
			return nil, fmt.Errorf("containerd driver: runsc: %w (build it with `make host-setup`)", err)
		}
	}
	for _, dir := range []string{"runc", "runsc", "fifo"} {
		if err := os.MkdirAll(filepath.Join(cfg.StateDir, dir), 0o700); err != nil {
			return nil, fmt.Errorf("containerd driver: state dir: %w", err)
		}
	}
	client, err := ctr.New(cfg.Address, ctr.WithDefaultNamespace(cfg.Namespace), ctr.WithTimeout(cfg.DialTimeout))
	if err != nil {
		return nil, fmt.Errorf("containerd driver: connect to %s: %w", cfg.Address, err)
	}
	if _, err := client.Version(ctx); err != nil {
		client.Close()
		return nil, fmt.Errorf("containerd driver: containerd at %s does not answer: %w", cfg.Address, err)
	}
	d := &Driver{
		cfg:      cfg,
		client:   client,
		log:      cfg.Logger.With("driver", Name, "namespace", cfg.Namespace),
		cgroup:   detectCgroups(),
		closed:   make(chan struct{}),
		starting: map[string]bool{},
		stopping: map[string]int{},
	}
	d.removeStaleViews(ctx)
	d.watchOOM()
	return d, nil
}

// Name implements runtime.Driver.
func (d *Driver) Name() string { return Name }

// Capabilities implements runtime.Driver.
func (d *Driver) Capabilities() runtime.Capabilities {
	tiers := []v1alpha1.Tier{v1alpha1.TierContainer}
	if d.cfg.Runsc != "" {
		tiers = append(tiers, v1alpha1.TierSandbox)
	}
	return runtime.Capabilities{Tiers: tiers, Limits: true, Mounts: true, NetNS: true, HostPID: true}
}

// Close implements runtime.Driver. Instances keep running.
func (d *Driver) Close() error {
	var err error
	d.closeOnce.Do(func() {
		close(d.closed)
		d.watcher.Wait()
		err = d.client.Close()
	})
	if err != nil {
		return fmt.Errorf("containerd driver: close: %w", err)
	}
	return nil
}

// check returns errClosed after Close, else ctx's error.
func (d *Driver) check(ctx context.Context) error {
	select {
	case <-d.closed:
		return errClosed
	default:
	}
	return ctx.Err()
}

var errClosed = errors.New("containerd driver: closed")

// lockID serialises operations that create or delete the instance id.
func (d *Driver) lockID(id string) func() {
	m, _ := d.idLocks.LoadOrStore(id, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// runtimeRoot is the root directory the shim runs instance id's runtime with
// (under it, one directory per containerd namespace): runc's is shared, and
// each sandbox has one of its own, because runsc finds a container by ID
// prefix and takes "web-1" beside "web-10" for ambiguous.
func (d *Driver) runtimeRoot(tier v1alpha1.Tier, id string) string {
	if tier == v1alpha1.TierSandbox {
		return filepath.Join(d.runtimeDir(tier), id)
	}
	return d.runtimeDir(tier)
}

// runtimeDir is where runc or runsc keeps state for tier: runc's root, and the
// directory of the sandboxes' roots (before they had one each, their shared
// root was runtimeDir/<namespace>).
func (d *Driver) runtimeDir(tier v1alpha1.Tier) string {
	if tier == v1alpha1.TierSandbox {
		return filepath.Join(d.cfg.StateDir, "runsc")
	}
	return filepath.Join(d.cfg.StateDir, "runc")
}

func (d *Driver) fifoDir() string { return filepath.Join(d.cfg.StateDir, "fifo") }

// cgroupsPath is the cgroup (relative to each hierarchy's root) that holds
// instance id.
func (d *Driver) cgroupsPath(id string) string { return "/" + d.cfg.Namespace + "/" + id }
