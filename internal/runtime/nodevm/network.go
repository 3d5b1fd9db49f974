package nodevm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
)

// NICID is the ID, among the devices of its node VM, of the NIC that
// carries instance id's network: at most 20 characters, as device IDs are.
func NICID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "nic-" + hex.EncodeToString(sum[:8])
}

// attachNIC opens the tap the network manager made for spec's instance and
// plugs it into node VM vm as a NIC with the instance's MAC. A NIC of that
// ID the VM still holds (from a start that ended half-way) is unplugged
// first.
func (d *Driver) attachNIC(ctx context.Context, vm string, spec runtime.InstanceSpec) (string, error) {
	id := NICID(spec.ID)
	tap, err := d.cfg.OpenTap(spec.ID)
	if err != nil {
		return "", fmt.Errorf("instance %q: open its tap: %w", spec.ID, err)
	}
	defer tap.Close()
	nic := qemu.NIC{ID: id, Tap: tap, MAC: spec.VMNet.MAC}
	err = d.cfg.QEMU.AttachNIC(ctx, vm, nic)
	if errors.Is(err, qemu.ErrDeviceExists) {
		d.log.Warn("nodevm driver: unplug a NIC left from an earlier start", "id", spec.ID, "vm", vm, "nic", id)
		if err := d.cfg.QEMU.DetachNIC(ctx, vm, id); err != nil && !errors.Is(err, qemu.ErrNoDevice) {
			return "", fmt.Errorf("instance %q: node VM %s holds an old NIC %s: %w", spec.ID, vm, id, err)
		}
		err = d.cfg.QEMU.AttachNIC(ctx, vm, nic)
	}
	if err != nil {
		return "", fmt.Errorf("instance %q: %w", spec.ID, err)
	}
	return id, nil
}

// detachNIC unplugs instance id's NIC from node VM vm; one that is gone
// already, or whose VM has ended, is no error.
func (d *Driver) detachNIC(ctx context.Context, vm, id, nic string) error {
	err := d.cfg.QEMU.DetachNIC(ctx, vm, nic)
	if err == nil || errors.Is(err, qemu.ErrNoDevice) || vmGone(err) {
		return nil
	}
	return fmt.Errorf("instance %q: unplug its NIC %s from node VM %s: %w", id, nic, vm, err)
}

// containerNet is the guest's network of a container for n: the NIC with
// n's MAC, waited for at most wait.
func containerNet(n *runtime.VMNet, wait time.Duration) *guest.ContainerNet {
	return &guest.ContainerNet{
		MAC: n.MAC.String(), WaitMillis: wait.Milliseconds(),
		NetConfig: guest.NetConfig{Address: n.Address, Gateway: n.Gateway, DNS: n.DNS, Search: n.Search},
	}
}
