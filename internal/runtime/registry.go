package runtime

import (
	"errors"
	"fmt"
	"slices"

	"strata.dev/strata/api/v1alpha1"
)

// Registry maps each tier to the one driver that serves it on the host's
// kernel, and, when the host runs node VMs, the container and sandbox tiers
// to the driver that runs them inside node VMs (see For). It is built once,
// explicitly, where the daemon is wired together; nothing registers itself.
// A Registry is immutable and safe for concurrent use.
type Registry struct {
	drivers []Driver
	byTier  map[v1alpha1.Tier]Driver
	// nodeVMs runs replicas inside node VMs; nil when the host does not,
	// and then noNodeVMs says why.
	nodeVMs   Driver
	noNodeVMs string
}

// NewRegistry returns a registry of the given drivers. Each tier a driver
// lists in its Capabilities is served by that driver; two drivers serving the
// same tier, two drivers with the same name, an empty name or an unknown tier
// is an error.
func NewRegistry(drivers ...Driver) (*Registry, error) {
	r := &Registry{byTier: map[v1alpha1.Tier]Driver{}}
	names := map[string]bool{}
	var errs []error
	for _, d := range drivers {
		name := d.Name()
		switch {
		case name == "":
			errs = append(errs, errors.New("runtime registry: a driver has an empty name"))
		case names[name]:
			errs = append(errs, fmt.Errorf("runtime registry: two drivers are named %q", name))
		}
		names[name] = true
		for _, t := range d.Capabilities().Tiers {
			if !t.Valid() {
				errs = append(errs, fmt.Errorf("runtime registry: driver %q lists unknown tier %q", name, t))
				continue
			}
			if other, ok := r.byTier[t]; ok {
				errs = append(errs, fmt.Errorf("runtime registry: tier %s is served by both %q and %q", t, other.Name(), name))
				continue
			}
			r.byTier[t] = d
		}
		r.drivers = append(r.drivers, d)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// WithNodeVMs returns a copy of r in which d runs the replicas that go into
// node VMs, for the tiers d lists (container, sandbox). d is a driver of its
// own beside those of r: it is listed by Drivers and closed by Close, but
// ForTier never returns it.
func (r *Registry) WithNodeVMs(d Driver) (*Registry, error) {
	name := d.Name()
	for _, o := range r.drivers {
		if o.Name() == name {
			return nil, fmt.Errorf("runtime registry: two drivers are named %q", name)
		}
	}
	for _, t := range d.Capabilities().Tiers {
		if t != v1alpha1.TierContainer && t != v1alpha1.TierSandbox {
			return nil, fmt.Errorf("runtime registry: node VM driver %q lists tier %q: node VMs carry the container and sandbox tiers", name, t)
		}
	}
	out := *r
	out.drivers = append(append([]Driver(nil), r.drivers...), d)
	out.nodeVMs, out.noNodeVMs = d, ""
	return &out, nil
}

// WithoutNodeVMs returns a copy of r that records why this host runs no node
// VMs: For's error for a replica that must run in one says so.
func (r *Registry) WithoutNodeVMs(why string) *Registry {
	out := *r
	out.nodeVMs, out.noNodeVMs = nil, why
	return &out
}

// NodeVMs returns the driver that runs replicas inside node VMs, or nil and
// why the host runs none.
func (r *Registry) NodeVMs() (Driver, string) {
	if r.nodeVMs == nil {
		why := r.noNodeVMs
		if why == "" {
			why = "no node VM driver is configured"
		}
		return nil, why
	}
	return r.nodeVMs, ""
}

// For returns the driver that runs a replica of tier t: inside node VMs when
// inNodeVM (the host's policy or the workload sends its class there; the vm
// tier ignores it, its replicas are VMs of their own), else on the host's
// kernel (ForTier). A replica that must run in a node VM on a host that runs
// none is an error wrapping ErrUnsupported that says why and what to do; it
// never falls back to the host's kernel.
func (r *Registry) For(t v1alpha1.Tier, inNodeVM bool) (Driver, error) {
	if !inNodeVM || t == v1alpha1.TierVM {
		return r.ForTier(t)
	}
	d, why := r.NodeVMs()
	if d == nil {
		return nil, fmt.Errorf("tier %s inside node VMs: this host runs no node VMs (%s): %w; "+
			"run the daemon with a working vm tier and --node-vms=auto, or set placement.nodeVM: never to keep the workload on the host's kernel",
			t, why, ErrUnsupported)
	}
	if !d.Capabilities().Serves(t) {
		return nil, fmt.Errorf("tier %s inside node VMs: the node VM driver %q runs tiers %v only: %w; "+
			"install runsc for sandboxes in node VMs (make host-setup), or set placement.nodeVM: never",
			t, d.Name(), d.Capabilities().Tiers, ErrUnsupported)
	}
	return d, nil
}

// ForTier returns the driver that serves tier t, or an error wrapping
// ErrUnsupported when none does.
func (r *Registry) ForTier(t v1alpha1.Tier) (Driver, error) {
	if d, ok := r.byTier[t]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("tier %q: no runtime driver serves it on this host: %w", t, ErrUnsupported)
}

// ForInstance returns the driver that runs an instance of tier t whose
// status names driver (v1alpha1.Instance.Driver): that driver when the
// registry has it (the node VM driver for a replica in a node VM), else
// the tier's driver on the host (ForTier), for a status written before
// instances named their driver. What reads or acts on a running instance
// (its usage, exec, pause, a copy of its files) asks this one, not the
// tier's.
func (r *Registry) ForInstance(t v1alpha1.Tier, driver string) (Driver, error) {
	if d, ok := r.Named(driver); ok && driver != "" {
		return d, nil
	}
	return r.ForTier(t)
}

// Named returns the driver called name (Driver.Name), the node VM driver
// included: the driver an instance's status names.
func (r *Registry) Named(name string) (Driver, bool) {
	for _, d := range r.drivers {
		if d.Name() == name {
			return d, true
		}
	}
	return nil, false
}

// Tiers lists the tiers some driver serves, weakest first.
func (r *Registry) Tiers() []v1alpha1.Tier {
	var ts []v1alpha1.Tier
	for _, t := range v1alpha1.Tiers {
		if _, ok := r.byTier[t]; ok {
			ts = append(ts, t)
		}
	}
	return ts
}

// Drivers returns the drivers in the order they were given.
func (r *Registry) Drivers() []Driver {
	return append([]Driver(nil), r.drivers...)
}

// Close closes every driver, the last given first (a driver may use one given before
// it: the node VM driver boots its VMs through the qemu driver), and returns their
// errors joined.
func (r *Registry) Close() error {
	var errs []error
	for _, d := range slices.Backward(r.drivers) {
		if err := d.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close runtime driver %q: %w", d.Name(), err))
		}
	}
	return errors.Join(errs...)
}
