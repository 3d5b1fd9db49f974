package runtime

import (
	"path/filepath"
	"strconv"
)

// Where a workload's data lives under the daemon's data directory. Volumes and slot
// disks are data: they outlive instances, and the controller, snapshots and backups
// find them here.

// VolumeDir is the directory of one volume of one replica slot:
// volumes/WORKLOAD/VOLUME/SLOT.
func VolumeDir(dataDir, workload, volume string, slot int) string {
	return filepath.Join(dataDir, "volumes", workload, volume, strconv.Itoa(slot))
}

// SlotDiskDir is where the writable disk of a disk VM's slot lives: disks/WORKLOAD/SLOT
// (InstanceSpec.DiskDir).
func SlotDiskDir(dataDir, workload string, slot int) string {
	return filepath.Join(dataDir, "disks", workload, strconv.Itoa(slot))
}

// RootfsLayerFile is where a restored container or sandbox slot's root filesystem
// waits for its next start: rootfs/WORKLOAD/SLOT/layer.tar, a layer of the changes to
// the image (InstanceSpec.RootfsLayer). The controller removes it once an instance
// has started from it.
func RootfsLayerFile(dataDir, workload string, slot int) string {
	return filepath.Join(dataDir, "rootfs", workload, strconv.Itoa(slot), "layer.tar")
}
