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
