package fake

import (
	"context"

	"strata.dev/strata/internal/runtime"
)

var _ runtime.Prober = (*Driver)(nil)

// Probe implements runtime.Prober with one check named after the driver: ready
// unless the host was told otherwise with SetUnready, or the driver is closed.
func (d *Driver) Probe(ctx context.Context) []runtime.Check {
	c := runtime.Check{Name: d.name, Tiers: d.caps.Tiers, Ready: true, Message: "simulated"}
	if err := d.check(ctx); err != nil {
		c.Ready, c.Message = false, err.Error()
		return []runtime.Check{c}
	}
	d.host.mu.Lock()
	defer d.host.mu.Unlock()
	if msg, ok := d.host.unready[d.name]; ok {
		c.Ready, c.Message = false, msg
	}
	return []runtime.Check{c}
}

// SetUnready makes the probe of the driver named name fail with msg; an empty
// msg makes it pass again.
func (h *Host) SetUnready(name, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.unready == nil {
		h.unready = map[string]string{}
	}
	if msg == "" {
		delete(h.unready, name)
		return
	}
	h.unready[name] = msg
}
