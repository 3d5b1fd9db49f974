package fake

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
)

var (
	_ runtime.Driver        = (*Driver)(nil)
	_ runtime.Execer        = (*Driver)(nil)
	_ runtime.ImageImporter = (*Driver)(nil)
	_ runtime.EventSource   = (*Driver)(nil)
)

// Options configure a Driver.
type Options struct {
	// Host is the simulated machine; nil: a new one with a RealClock.
	Host *Host
	// Name is the driver's name (default "fake"). Drivers own the instances
	// started by a driver of the same name on the same Host.
	Name string
	// Tiers served (default all three).
	Tiers []v1alpha1.Tier
	// Images are image references present from the start.
	Images []string
	// NoLimits makes Capabilities().Limits false and MemoryBytes ignored.
	NoLimits bool
}

// Driver is a runtime.Driver over a simulated Host.
type Driver struct {
	host   *Host
	name   string
	caps   runtime.Capabilities
	closed chan struct{}
	once   sync.Once
}

// ErrClosed is returned by a Driver's methods after Close.
var ErrClosed = errors.New("fake driver closed")

// New returns a driver on opts.Host (or a new Host).
func New(opts Options) (*Driver, error) {
	if opts.Host == nil {
		opts.Host = NewHost(HostOptions{})
	}
	if opts.Name == "" {
		opts.Name = "fake"
	}
	if opts.Tiers == nil {
		opts.Tiers = v1alpha1.Tiers
	}
	for _, ref := range opts.Images {
		n, err := runtime.NormalizeImage(ref)
		if err != nil {
			return nil, fmt.Errorf("fake driver: %w", err)
		}
		opts.Host.mu.Lock()
		opts.Host.images[n] = true
		opts.Host.mu.Unlock()
	}
	return &Driver{
		host: opts.Host,
		name: opts.Name,
		caps: runtime.Capabilities{
			Tiers:  append([]v1alpha1.Tier(nil), opts.Tiers...),
			Limits: !opts.NoLimits,
			Mounts: true,
			NetNS:  true,
		},
		closed: make(chan struct{}),
	}, nil
}

// Host returns the simulated machine the driver views.
func (d *Driver) Host() *Host { return d.host }

// Name implements runtime.Driver.
func (d *Driver) Name() string { return d.name }

// Capabilities implements runtime.Driver.
func (d *Driver) Capabilities() runtime.Capabilities {
	c := d.caps
	c.Tiers = append([]v1alpha1.Tier(nil), c.Tiers...)
	return c
}

// Close implements runtime.Driver: later calls fail with ErrClosed and event
// channels close; instances keep running on the Host.
func (d *Driver) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

func (d *Driver) check(ctx context.Context) error {
	select {
	case <-d.closed:
		return ErrClosed
	default:
	}
	return ctx.Err()
}

// lookup returns the owned instance id, settled. Callers hold h.mu.
func (d *Driver) lookup(id string) (*instance, error) {
	in, ok := d.host.instances[id]
	if !ok || in.owner != d.name {
		return nil, fmt.Errorf("instance %q: %w", id, runtime.ErrNotFound)
	}
	d.host.settle(in)
	return in, nil
}

// Start implements runtime.Driver.
func (d *Driver) Start(ctx context.Context, spec runtime.InstanceSpec) (runtime.Status, error) {
	if err := d.check(ctx); err != nil {
		return runtime.Status{}, err
	}
	if err := runtime.ValidateSpec(spec); err != nil {
		return runtime.Status{}, err
	}
	if !d.caps.Serves(spec.Tier) {
		return runtime.Status{}, fmt.Errorf("instance %q: tier %s: %w by driver %q", spec.ID, spec.Tier, runtime.ErrUnsupported, d.name)
	}
	// A VM that boots a kernel or a disk (spec.VM) needs no image.
	var image string
	var err error
	if spec.Image != "" || spec.VM == nil {
		if image, err = runtime.NormalizeImage(spec.Image); err != nil {
			return runtime.Status{}, fmt.Errorf("instance %q: %w", spec.ID, err)
		}
	}
	h := d.host
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.instances[spec.ID]; ok {
		return runtime.Status{}, fmt.Errorf("instance %q: %w", spec.ID, runtime.ErrAlreadyExists)
	}
	if err, ok := h.failStart[spec.ID]; ok {
		delete(h.failStart, spec.ID)
		return runtime.Status{}, fmt.Errorf("instance %q: start: %w", spec.ID, err)
	}
	if image != "" && !h.images[image] {
		return runtime.Status{}, fmt.Errorf("instance %q: %s: %w", spec.ID, spec.Image, runtime.ErrImageNotFound)
	}
	for _, m := range spec.Mounts {
		if _, err := os.Stat(m.HostPath); err != nil {
			return runtime.Status{}, fmt.Errorf("instance %q: mount %s: %w", spec.ID, m.Path, err)
		}
	}
	files, err := h.openSlotDisk(spec)
	if err != nil {
		return runtime.Status{}, fmt.Errorf("instance %q: %w", spec.ID, err)
	}
	if spec.RootfsLayer != "" {
		if files, err = readLayer(spec.RootfsLayer); err != nil {
			return runtime.Status{}, fmt.Errorf("instance %q: %w", spec.ID, err)
		}
	}
	if !d.caps.Limits {
		spec.MemoryBytes = 0
	}
	spec.Labels = copyMap(spec.Labels)
	spec.Env = copyMap(spec.Env)
	h.nextPID++
	in := &instance{
		spec:      spec,
		image:     image,
		owner:     d.name,
		state:     runtime.StateRunning,
		pid:       h.nextPID,
		startedAt: h.clock.Now(),
		done:      make(chan struct{}),
		files:     files,
	}
	in.script, err = script.Parse(spec.Command)
	in.known = err == nil
	if err := h.run(in); err != nil {
		return runtime.Status{}, fmt.Errorf("instance %q: %w", spec.ID, err)
	}
	h.instances[spec.ID] = in
	h.settle(in)
	h.rewatch(in)
	return in.status(), nil
}

// run starts the main process's model: it writes what the command prints at
// once to the log and decides when and how the process ends.
func (h *Host) run(in *instance) error {
	var out output
	if in.spec.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(in.spec.LogPath), 0o750); err != nil {
			return fmt.Errorf("log: %w", err)
		}
		f, err := os.OpenFile(in.spec.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("log: %w", err)
		}
		defer f.Close()
		out = output{stdout: f, stderr: f}
	}
	now := h.clock.Now()
	s := in.script
	if !in.known {
		// Anything else is a server: runs until stopped, ends on SIGTERM.
		return nil
	}
	switch s.Op {
	case script.OpSleep, script.OpServe, script.OpIgnoreTerm:
		switch s.Op {
		case script.OpServe:
			out.out(script.ServeReady + "\n")
		case script.OpIgnoreTerm:
			out.out(script.IgnoreTermReady + "\n")
		}
		in.endsAt = now.Add(time.Duration(s.Seconds) * time.Second)
		in.termIgnored = s.Op != script.OpServe
		return nil
	}
	code, oom := h.behave(in, s, nil, out)
	if oom {
		h.oom(in)
	}
	in.endsAt, in.endCode = now, code
	return nil
}

// Stop implements runtime.Driver.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	h := d.host
	h.mu.Lock()
	in, err := d.lookup(id)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	if in.exited() {
		h.mu.Unlock()
		return nil
	}
	in.state = runtime.StateStopping
	// A paused process cannot act on SIGTERM: it is killed once the grace ends.
	if !in.paused && (!in.known || !in.termIgnored) {
		h.exit(in, 143)
		h.mu.Unlock()
		return nil
	}
	done := in.done
	h.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-h.clock.After(grace):
	case <-ctx.Done():
		h.mu.Lock()
		if !in.exited() {
			in.state = runtime.StateRunning
		}
		h.mu.Unlock()
		return fmt.Errorf("stop instance %q: %w", id, ctx.Err())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settle(in)
	h.exit(in, 137)
	return nil
}

// Remove implements runtime.Driver.
func (d *Driver) Remove(ctx context.Context, id string) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	h := d.host
	h.mu.Lock()
	defer h.mu.Unlock()
	in, err := d.lookup(id)
	if err != nil {
		return err
	}
	if !in.exited() {
		return fmt.Errorf("remove instance %q: %w", id, runtime.ErrRunning)
	}
	delete(h.instances, id)
	return nil
}

// Status implements runtime.Driver.
func (d *Driver) Status(ctx context.Context, id string) (runtime.Status, error) {
	if err := d.check(ctx); err != nil {
		return runtime.Status{}, err
	}
	d.host.mu.Lock()
	defer d.host.mu.Unlock()
	in, err := d.lookup(id)
	if err != nil {
		return runtime.Status{}, err
	}
	return in.status(), nil
}

// List implements runtime.Driver.
func (d *Driver) List(ctx context.Context) ([]runtime.Status, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	h := d.host
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []runtime.Status
	for _, in := range h.instances {
		if in.owner != d.name {
			continue
		}
		h.settle(in)
		out = append(out, in.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
