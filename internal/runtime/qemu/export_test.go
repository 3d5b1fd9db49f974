package qemu

import "context"

// HMP runs a human monitor command in instance id's QEMU (for tests that write
// to a running VM's disk through QEMU's block layer, as the guest would).
func (d *Driver) HMP(ctx context.Context, id, command string) (string, error) {
	var out string
	err := d.runQMP(ctx, id, "human-monitor-command", map[string]any{"command-line": command}, &out)
	return out, err
}

// HoldInstance takes instance id's lock, which every Driver value over the same
// state directory shares, until release is called.
func HoldInstance(d *Driver, id string) (release func()) { return d.lockID(id) }

// SettleHeld settles instance id's record as d's watcher does, for a caller that
// holds its lock (HoldInstance).
func SettleHeld(d *Driver, id string) (finished bool, err error) {
	r, err := d.readRecord(id)
	if err != nil {
		return false, err
	}
	return d.settle(r), nil
}
