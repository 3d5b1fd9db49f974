// Package backup takes workloads' backups into backup repositories and restores them:
// the daemon's side of `strata repo`, `strata backup`, `strata restore` and
// `strata drill`.
//
// # Terms
//
//   - A repository is an internal/backup/repo repository (a directory or an S3 bucket)
//     that the daemon knows by a name. The daemon keeps the list in
//     DATA_DIR/backup/repositories.json and each repository's key in
//     DATA_DIR/backup/keys/NAME.key (mode 0600): init creates both, connect opens a
//     repository another daemon created with a copy of its key file. The key never
//     leaves the host through the API.
//   - A backup is one point in time of one or more workloads: their snapshots, taken
//     together by internal/snapshot (CreateGroup: every pre hook, then every instance
//     paused, copied and resumed, then every post hook), streamed file by file into the
//     repository with each workload's name, tier, labels and spec, and then deleted from
//     the host. Its files are named WORKLOAD/slot-N/disk.img (a VM's disk, raw, in
//     1 MiB blocks; disk.qcow2 in backups of earlier versions),
//     WORKLOAD/slot-N/rootfs.tar and WORKLOAD/slot-N/volumes/VOLUME.tar.
//   - A VM disk is copied since the checkpoint its last backup started (disk.go,
//     runtime.DiskCheckpointer): only the blocks the guest wrote are read; the others
//     are the last backup's chunks, which the slot index lists per block.
//   - A file index (index.go) is kept per repository and workload slot in
//     DATA_DIR/backup/index/REPO/WORKLOAD/slot-N.json and in the backup as
//     WORKLOAD/slot-N/files.index: every large file of each volume and of the root
//     filesystem layer (when its driver writes a plan) with its state and chunks.
//     The next backup's snapshot leaves out the files whose state did not change,
//     and the backup reuses their chunks (repo.Writer.AddParts); a missing index is
//     read from the newest backup that has one. ForceRead ignores it.
//   - A group is the backup's retention group (Meta.Group): prune keeps backups per
//     group, and a drill finds the latest backup of a group or of a workload.
//   - A restore recreates the backup's workloads from their saved specs, held
//     (annotation strata.dev/hold) so that nothing starts, puts the data in place
//     (snapshot.PutData), and releases the hold. It never replaces a workload: a name
//     in use is refused.
//   - A drill restores the latest backup into a scratch segment under scratch names,
//     waits until the workloads run and pass their health checks, reports the time that
//     took (RTO) and the backup's age (RPO), and removes everything it made.
package backup
