package v1alpha1

import "time"

// KindSnapshot is the kind of a local, point-in-time copy of a workload's data.
const KindSnapshot = "Snapshot"

// AnnotationHold is the annotation that holds a workload: all of its instances stop and
// none start until it is removed; its value says why (the daemon holds a workload while it restores a snapshot
// into its disks and volumes).
const AnnotationHold = "strata.dev/hold"

// Snapshot is a copy of one workload's data at one moment, kept on the host under the
// daemon's data directory: per replica slot, a VM's disk (and with memory, its whole
// running state) or a container's volumes. The daemon writes snapshots; users create,
// restore and delete them with `strata snapshot`. Its name is WORKLOAD.NAME.
type Snapshot struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta      `json:"metadata"`
	Spec     SnapshotSpec    `json:"spec"`
	Status   *SnapshotStatus `json:"status,omitempty"`
}

// SnapshotSpec says what was asked for.
type SnapshotSpec struct {
	Workload string `json:"workload"`
	// Name is the snapshot's name within the workload (a DNS label).
	Name string `json:"name"`
	// Memory asks for the whole running state of VMs, not only their disks: a restore
	// resumes the guest where it was.
	Memory bool `json:"memory,omitempty"`
}

// SnapshotStatus is what was taken.
type SnapshotStatus struct {
	// Time is the moment the snapshot stands for (when its instances were frozen).
	Time time.Time `json:"time"`
	Tier Tier      `json:"tier"`
	// Consistency is "crash" (as if the power went off at Time) or "application" (the
	// workload's pre-snapshot hooks ran first).
	Consistency string         `json:"consistency"`
	Slots       []SnapshotSlot `json:"slots"`
	// Bytes is the size of the snapshot's files on disk.
	Bytes int64 `json:"bytes"`
	// Workload is the workload's spec when the snapshot was taken.
	Workload *WorkloadSpec `json:"workloadSpec,omitempty"`
	// Warnings say what was left out, and why (a slot that did not run, a VM without a
	// disk).
	Warnings []string `json:"warnings,omitempty"`
}

// SnapshotSlot is what a snapshot holds of one replica slot.
type SnapshotSlot struct {
	Slot     int    `json:"slot"`
	Instance string `json:"instance"`
	// Files are the snapshot's files of this slot, relative to the snapshot's directory:
	// disk.qcow2 and memory.state for VMs, volumes/NAME.tar for containers.
	Files []string `json:"files"`
}

// BackupSpec configures how a workload's data is snapshotted and backed up.
type BackupSpec struct {
	// Hooks run inside each instance around a snapshot, e.g. a database flush: a snapshot
	// taken between them is application-consistent.
	Hooks *BackupHooks `json:"hooks,omitempty"`
}

// BackupHooks are commands run with exec in every running instance.
type BackupHooks struct {
	// Pre runs before the instances are frozen; a failing pre hook cancels the snapshot.
	Pre []string `json:"pre,omitempty"`
	// Post runs after they run again (also when the snapshot failed).
	Post []string `json:"post,omitempty"`
}
