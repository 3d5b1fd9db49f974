// Package snapshot takes, restores and deletes snapshots: local, point-in-time copies of
// a workload's data, kept under the daemon's data directory in
// snapshots/WORKLOAD/NAME/, one subdirectory per replica slot (slot-N).
//
// What a slot's copy holds depends on the tier:
//   - a VM: its disk as a standalone qcow2 (disk.qcow2), copied by the driver while the
//     guest runs; with memory, also its memory and device state (memory.state), taken
//     at the same moment;
//   - a container or sandbox: what it changed in its image's root filesystem as a layer
//     archive (rootfs.tar, runtime.RootfsSaver) and each volume as a tar archive
//     (volumes/NAME.tar), copied while the instance's processes are frozen.
//
// A backup's snapshot (CreateGroupWith and an Index) writes next to each volume archive
// its plan (VOLUME.tar.plan): every file of LargeFile bytes or more, where its content
// starts in the archive and its FileState (size, mtime, ctime, inode, mode). The content
// of a file whose state the index knows is left out of the archive, unread; the backup
// puts the last backup's chunks in its place. The root filesystem layer gets the same
// (rootfs.tar.plan, the index asked with volume RootfsIndex) when its driver can write
// it so (runtime.RootfsPlanSaver: a container's overlay upper directory); otherwise it is
// written whole, with no plan.
//
// A snapshot is crash-consistent (as if the power went off at its moment) unless the
// workload has spec.backup.hooks: then the pre hook runs in every instance first and the
// snapshot is application-consistent.
//
// Restoring a VM snapshot with memory replaces the running guests with the saved ones,
// which continue where they were. Any other restore holds the workload (annotation
// strata.dev/hold: the controller stops its instances), puts the saved disks and
// volumes in place and each root filesystem layer where the slot's next instance starts
// from it (runtime.RootfsLayerFile), and lets the workload start again from them.
package snapshot
