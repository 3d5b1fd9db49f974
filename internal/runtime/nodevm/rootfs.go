package nodevm

import (
	"context"
	"fmt"
	"io"
	"os"

	"strata.dev/strata/internal/runtime"
)

var _ runtime.RootfsSaver = (*Driver)(nil)

// SaveRootfs implements runtime.RootfsSaver: the guest writes the changes
// of the instance's root filesystem as a layer archive (guest.NodeRootfs),
// with a whiteout for each file removed from the image and an opaque marker
// for a directory that hides the image's. For a container they are the
// upper directory of its overlayfs; a sandbox keeps them inside runsc,
// which writes them in the guest (`runsc tar rootfs-upper`), as the
// containerd driver has it write them on the host. An instance that has
// ended (its node VM with it) is ErrNotRunning.
func (d *Driver) SaveRootfs(ctx context.Context, id string, w io.Writer) error {
	if err := d.check(); err != nil {
		return err
	}
	r, err := d.readRecord(id)
	if err != nil {
		return err
	}
	notRunning := fmt.Errorf("%w: instance %q", runtime.ErrNotRunning, id)
	if r.Finished {
		return notRunning
	}
	a, err := d.cfg.QEMU.NodeAgent(ctx, r.VM)
	if vmGone(err) {
		return notRunning
	}
	if err != nil {
		return err
	}
	if err := a.NodeRootfs(ctx, id, w); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if st, serr := d.live(ctx, r); serr == nil && st.State == runtime.StateExited {
			return notRunning
		}
		return fmt.Errorf("instance %q in node VM %s: %w", id, r.VM, err)
	}
	return nil
}

// applyLayer unpacks spec's saved root filesystem layer (RootfsLayer, a file
// on the host) into its container, created in node VM vm and not started:
// the guest applies it to the container's overlayfs (guest.NodeLayer).
func (d *Driver) applyLayer(ctx context.Context, vm string, spec runtime.InstanceSpec) error {
	f, err := os.Open(spec.RootfsLayer)
	if err != nil {
		return fmt.Errorf("instance %q: root filesystem layer: %w", spec.ID, err)
	}
	defer f.Close()
	a, err := d.cfg.QEMU.NodeAgent(ctx, vm)
	if err != nil {
		return err
	}
	if err := a.NodeLayer(ctx, spec.ID, f); err != nil {
		return fmt.Errorf("instance %q in node VM %s: %w", spec.ID, vm, err)
	}
	return nil
}
