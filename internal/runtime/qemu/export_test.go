package qemu

import "context"

// HMP runs a human monitor command in instance id's QEMU (for tests that write
// to a running VM's disk through QEMU's block layer, as the guest would).
func (d *Driver) HMP(ctx context.Context, id, command string) (string, error) {
	var out string
	err := d.runQMP(ctx, id, "human-monitor-command", map[string]any{"command-line": command}, &out)
	return out, err
}
