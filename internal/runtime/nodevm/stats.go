package nodevm

import (
	"context"
	"fmt"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
)

var (
	_ runtime.StatsReader = (*Driver)(nil)
	_ runtime.Pauser      = (*Driver)(nil)
)

// Stats implements runtime.StatsReader: the guest measures the container
// (guest.NodeStats). A crun container's CPU time and memory are its cgroup's
// in the guest (memory.current, page cache included, as its limit counts
// it); a runsc container's are gVisor's own accounting (runsc events
// --stats), since runsc keeps no cgroup in the guest: the CPU time its tasks
// used inside the sandbox and the memory the sandbox holds for them, not
// what the runsc processes themselves cost the guest.
func (d *Driver) Stats(ctx context.Context, id string) (runtime.Stats, error) {
	rep, err := d.running(ctx, id, guest.NodeStats)
	if err != nil {
		return runtime.Stats{}, err
	}
	if rep.Stats == nil {
		return runtime.Stats{}, fmt.Errorf("%w: instance %q is %s in its node VM", runtime.ErrNotRunning, id, rep.State)
	}
	return runtime.Stats{CPUSeconds: rep.Stats.CPUSeconds, MemoryBytes: rep.Stats.MemoryBytes}, nil
}

// Pause implements runtime.Pauser: the container's runtime in the guest
// freezes it (crun pause, runsc pause). It reads as running while paused.
func (d *Driver) Pause(ctx context.Context, id string) error {
	_, err := d.running(ctx, id, guest.NodePause)
	return err
}

// Resume implements runtime.Pauser: crun resume, runsc resume.
func (d *Driver) Resume(ctx context.Context, id string) error {
	_, err := d.running(ctx, id, guest.NodeResume)
	return err
}

// running sends op about instance id to its node VM: ErrNotFound for an
// unknown instance, ErrNotRunning for one that has ended (its node VM
// with it).
func (d *Driver) running(ctx context.Context, id, op string) (guest.NodeReply, error) {
	if err := d.check(); err != nil {
		return guest.NodeReply{}, err
	}
	r, err := d.readRecord(id)
	if err != nil {
		return guest.NodeReply{}, err
	}
	notRunning := fmt.Errorf("%w: instance %q", runtime.ErrNotRunning, id)
	if r.Finished {
		return guest.NodeReply{}, notRunning
	}
	rep, err := d.node(ctx, r.VM, guest.NodeRequest{Op: op, ID: id})
	if err == nil {
		return rep, nil
	}
	if ctx.Err() != nil {
		return guest.NodeReply{}, ctx.Err()
	}
	// The container, or its node VM, may have ended since the record was
	// read: the instance's status says.
	if st, serr := d.live(ctx, r); serr == nil && st.State == runtime.StateExited {
		return guest.NodeReply{}, notRunning
	}
	return guest.NodeReply{}, fmt.Errorf("%s instance %q in node VM %s: %w", op, id, r.VM, err)
}
