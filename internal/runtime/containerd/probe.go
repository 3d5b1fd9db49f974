package containerd

import (
	"context"
	"fmt"
	"os/exec"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

var _ runtime.Prober = (*Driver)(nil)

// Probe implements runtime.Prober: containerd answers, its runc shim and runc
// are on PATH, and runsc (when the sandbox tier is configured) is executable.
func (d *Driver) Probe(ctx context.Context) []runtime.Check {
	both := []v1alpha1.Tier{v1alpha1.TierContainer}
	if d.cfg.Runsc != "" {
		both = append(both, v1alpha1.TierSandbox)
	}
	checks := []runtime.Check{{Name: "containerd", Tiers: both}}
	if v, err := d.client.Version(ctx); err != nil {
		checks[0].Message = fmt.Sprintf("containerd at %s does not answer: %v (is it running?)", d.cfg.Address, err)
	} else {
		checks[0].Ready, checks[0].Message = true, fmt.Sprintf("containerd %s at %s", v.Version, d.cfg.Address)
	}
	checks = append(checks, programs("runc", []v1alpha1.Tier{v1alpha1.TierContainer}, "runc", "containerd-shim-runc-v2"))
	if d.cfg.Runsc != "" {
		c := runtime.Check{Name: "gvisor", Tiers: []v1alpha1.Tier{v1alpha1.TierSandbox}}
		if err := runtime.CheckExecutable(d.cfg.Runsc); err != nil {
			c.Message = "runsc: " + err.Error() + " (run `make host-setup` to build it)"
		} else {
			c.Ready, c.Message = true, "runsc at "+d.cfg.Runsc
		}
		checks = append(checks, c)
	}
	return checks
}

// programs checks that each program is on PATH.
func programs(name string, tiers []v1alpha1.Tier, progs ...string) runtime.Check {
	c := runtime.Check{Name: name, Tiers: tiers, Ready: true}
	var found []string
	for _, p := range progs {
		full, err := exec.LookPath(p)
		if err != nil {
			c.Ready, c.Message = false, fmt.Sprintf("%s not found on PATH (install the runc and containerd packages: `make host-setup`)", p)
			return c
		}
		found = append(found, full)
	}
	c.Message = fmt.Sprint(found)
	return c
}
