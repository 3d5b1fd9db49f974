package nodevm

import (
	"context"
	"fmt"
	"strings"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
)

var _ runtime.Prober = (*Driver)(nil)

// Probe implements runtime.Prober with one check, "nodevm": the runtimes
// node VMs carry on their tools disk (crun, and runsc for the sandbox
// tier) are there, whether host directories can be shared into node VMs
// (volumes), and how many node VMs run. What boots node VMs (QEMU, the
// guest kernel) is the qemu driver's checks.
func (d *Driver) Probe(ctx context.Context) []runtime.Check {
	c := runtime.Check{Name: Name, Tiers: d.cfg.Tiers}
	tools := []struct{ name, path string }{{d.cfg.ContainerRuntime, d.runtimePath()}}
	if d.cfg.Tools.Runsc != "" {
		tools = append(tools, struct{ name, path string }{guest.RuntimeRunsc, d.cfg.Tools.Runsc})
	}
	var found, missing []string
	for _, t := range tools {
		if err := runtime.CheckExecutable(t.path); err != nil {
			missing = append(missing, fmt.Sprintf("%s: %v", t.name, err))
			continue
		}
		found = append(found, t.name+" at "+t.path)
	}
	if len(missing) > 0 {
		c.Message = "node VMs cannot run containers: " + strings.Join(missing, "; ") + " (`make host-setup` installs them)"
		return []runtime.Check{c}
	}
	c.Ready = true
	msg := []string{"node VMs carry " + strings.Join(found, ", ")}
	if d.noMounts != "" {
		msg = append(msg, "no volumes in node VMs: "+d.noMounts)
	}
	if nodes, err := d.Nodes(ctx); err == nil {
		msg = append(msg, fmt.Sprintf("%d running", len(nodes)))
	}
	c.Message = strings.Join(msg, "; ")
	return []runtime.Check{c}
}

// runtimePath is the binary of the container tier's runtime.
func (d *Driver) runtimePath() string {
	if d.cfg.ContainerRuntime == guest.RuntimeRunc {
		return d.cfg.Tools.Runc
	}
	return d.cfg.Tools.Crun
}
