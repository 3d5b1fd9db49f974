package v1alpha1

import (
	"fmt"
	"strings"
	"time"
)

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
	// Schedule makes the daemon back the workload up on its own: "@hourly", "@daily" or
	// "@every DURATION" (Go's duration syntax, at least BackupMinInterval, such as
	// "@every 6h"). Empty: only `strata backup create` backs it up.
	Schedule string `json:"schedule,omitempty"`
	// Keep is the retention applied to the workload's group after each scheduled backup
	// (default: the last DefaultBackupKeepLast).
	Keep *BackupKeep `json:"keep,omitempty"`
	// Repo names the repository scheduled backups go to (default: "default").
	Repo string `json:"repo,omitempty"`
	// Group backs the workload up together with the other workloads of the same group,
	// at one point in time; it is also the backups' retention group. Empty: the workload
	// is its own group.
	Group string `json:"group,omitempty"`
}

// BackupKeep is a retention: in the group, keep the newest Last backups and the newest
// backup of each of the last Hourly hours, Daily days and Weekly weeks that have one.
type BackupKeep struct {
	Last   int32 `json:"last,omitempty"`
	Hourly int32 `json:"hourly,omitempty"`
	Daily  int32 `json:"daily,omitempty"`
	Weekly int32 `json:"weekly,omitempty"`
}

// BackupStatus is what the daemon's backup schedule last did for a workload.
type BackupStatus struct {
	LastAttempt  *time.Time `json:"lastAttempt,omitempty"`
	LastSuccess  *time.Time `json:"lastSuccess,omitempty"`
	LastError    string     `json:"lastError,omitempty"`
	LastBackupID string     `json:"lastBackupID,omitempty"`
}

// Backup schedule bounds and defaults.
const (
	// BackupMinInterval is the shortest "@every" a schedule may ask for.
	BackupMinInterval = 10 * time.Second
	// DefaultBackupKeepLast is how many scheduled backups are kept without spec.backup.keep.
	DefaultBackupKeepLast int32 = 7
)

// ParseBackupSchedule returns the interval of a spec.backup.schedule: "@hourly",
// "@daily" or "@every DURATION".
func ParseBackupSchedule(s string) (time.Duration, error) {
	switch s {
	case "@hourly":
		return time.Hour, nil
	case "@daily":
		return 24 * time.Hour, nil
	}
	rest, ok := strings.CutPrefix(s, "@every ")
	if !ok {
		return 0, fmt.Errorf("use @hourly, @daily or @every DURATION (such as @every 6h)")
	}
	d, err := time.ParseDuration(strings.TrimSpace(rest))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: write it like 90m or 6h", strings.TrimSpace(rest))
	}
	if d < BackupMinInterval {
		return 0, fmt.Errorf("every %s is too often: at least every %s", d, BackupMinInterval)
	}
	return d, nil
}

// BackupHooks are commands run with exec in every running instance.
type BackupHooks struct {
	// Pre runs before the instances are frozen; a failing pre hook cancels the snapshot.
	Pre []string `json:"pre,omitempty"`
	// Post runs after they run again (also when the snapshot failed).
	Post []string `json:"post,omitempty"`
}
