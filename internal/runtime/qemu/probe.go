package qemu

import (
	"context"
	"fmt"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
)

var _ runtime.Prober = (*Driver)(nil)

// Probe implements runtime.Prober: QEMU and qemu-img are executable and the
// accelerator the daemon demands works (the accelerator and why it was chosen
// are in the message), and strata's guest kernel and init,
// which image VMs boot, are in place.
func (d *Driver) Probe(context.Context) []runtime.Check {
	vm := []v1alpha1.Tier{v1alpha1.TierVM}
	q := runtime.Check{Name: "qemu", Tiers: vm}
	switch {
	case runtime.CheckExecutable(d.cfg.QEMU) != nil:
		q.Message = runtime.CheckExecutable(d.cfg.QEMU).Error() + " (install qemu-system-x86: `make host-setup`)"
	case runtime.CheckExecutable(d.cfg.QEMUImg) != nil:
		q.Message = runtime.CheckExecutable(d.cfg.QEMUImg).Error() + " (install qemu-utils: `make host-setup`)"
	case d.choice.Refused != "":
		q.Message = fmt.Sprintf("%s: %s", d.cfg.QEMU, d.choice.Reason)
	default:
		q.Ready = true
		q.Message = fmt.Sprintf("%s with %s", d.cfg.QEMU, d.choice.Reason)
	}
	g := runtime.Check{Name: "guest", Tiers: vm}
	k, err := guest.LocateKernel(d.cfg.KernelDir)
	switch {
	case err != nil:
		g.Message = "image VMs cannot boot: " + err.Error()
	case runtime.CheckExecutable(d.cfg.GuestInit) != nil:
		g.Message = "image VMs cannot boot: strata-guest: " + runtime.CheckExecutable(d.cfg.GuestInit).Error() + " (build it with `make build`)"
	default:
		g.Ready, g.Message = true, fmt.Sprintf("kernel %s, init %s", k.Describe(), d.cfg.GuestInit)
		if d.cfg.KernelDir == "" && !k.Builtin {
			g.Message += fmt.Sprintf("; strata's own kernel is not built in %s (`make host-setup` builds it), so VMs boot Debian's", guest.StrataKernelDir)
		}
	}
	return []runtime.Check{q, g}
}
