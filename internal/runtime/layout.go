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

// ImagesDir is where the files VMs boot from (kernels, initrds, disk images) live:
// DATADIR/images. A relative vm.kernel, vm.initrd or vm.disk.path names a file there.
func ImagesDir(dataDir string) string {
	return filepath.Join(dataDir, "images")
}

// ResolveVMFile returns the host path of a VM file as a workload names it: an absolute
// path as it is, a relative one under imagesDir.
func ResolveVMFile(imagesDir, name string) string {
	if name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(imagesDir, name)
}
