package runtime

import (
	"errors"
	"fmt"

	"strata.dev/strata/api/v1alpha1"
)

// Registry maps each tier to the one driver that serves it. It is built once,
// explicitly, where the daemon is wired together; nothing registers itself.
// A Registry is immutable and safe for concurrent use.
type Registry struct {
	drivers []Driver
	byTier  map[v1alpha1.Tier]Driver
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

// ForTier returns the driver that serves tier t, or an error wrapping
// ErrUnsupported when none does.
func (r *Registry) ForTier(t v1alpha1.Tier) (Driver, error) {
	if d, ok := r.byTier[t]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("tier %q: no runtime driver serves it on this host: %w", t, ErrUnsupported)
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

// Close closes every driver and returns their errors joined.
func (r *Registry) Close() error {
	var errs []error
	for _, d := range r.drivers {
		if err := d.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close runtime driver %q: %w", d.Name(), err))
		}
	}
	return errors.Join(errs...)
}
