package v1alpha1

import "time"

// The daemon's backup API: repositories, backups, restores and drills. These are the
// bodies of its requests and answers, not stored objects. A backup is a set of
// workloads' snapshots streamed into a backup repository (deduplicated, compressed and
// encrypted, in a directory or S3) together with each workload's spec, so that a restore
// can recreate the workloads, on this host or on another that connected the repository.

// DefaultBackupRepository is the name of the repository used when none is named.
const DefaultBackupRepository = "default"

// BackupRepository is a backup repository this daemon knows.
type BackupRepository struct {
	// Name is how commands refer to it (--repo NAME).
	Name string `json:"name"`
	// URL is where it is: file:///abs/path or s3://bucket/prefix?endpoint=host:port.
	URL string `json:"url"`
	// ID is the repository's random ID, fixed when it was created.
	ID string `json:"id"`
	// KeyFile is the file on the daemon's host that holds the repository's key (mode
	// 0600). Losing it loses every backup in the repository.
	KeyFile string `json:"keyFile"`
	// Created is true when this daemon created the repository (init), false when it
	// connected to an existing one.
	Created bool      `json:"created"`
	Added   time.Time `json:"added"`
	// ReadOnly connections (repo connect --read-only) list, restore and verify, and take
	// no lock; backups, deletes and prunes through them are refused.
	ReadOnly bool `json:"readOnly,omitempty"`
}

// BackupRepositoryRequest is the body of POST .../backuprepos/init and .../connect.
type BackupRepositoryRequest struct {
	Name string `json:"name,omitempty"`
	URL  string `json:"url"`
	// Key is the repository's key in hexadecimal, as a key file holds it (connect only).
	Key string `json:"key,omitempty"`
	// ReadOnly connects for reading only (connect only): for storage this host may not
	// write to, such as a bucket reached with read-only credentials.
	ReadOnly bool `json:"readOnly,omitempty"`
}

// RepositoryLock is a lock an operation holds on a backup repository: shared for
// operations that add or read (backup, restore, verify), exclusive for those that delete
// (delete, prune). GET .../backuprepos/NAME/locks lists them.
type RepositoryLock struct {
	// Name is the lock's object in the repository (locks/ID).
	Name string `json:"name"`
	// Kind is "shared" or "exclusive".
	Kind string `json:"kind"`
	Op   string `json:"op"`
	// Host, PID and Holder say which process holds it.
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Holder    string    `json:"holder,omitempty"`
	Taken     time.Time `json:"taken"`
	Refreshed time.Time `json:"refreshed"`
	// Stale locks protect nothing any more (not refreshed for too long, or their process
	// is gone); StaleReason says why. strata repo unlock removes them.
	Stale       bool   `json:"stale"`
	StaleReason string `json:"staleReason,omitempty"`
	// Error is set when the lock could not be read (damaged, or sealed with another key).
	Error string `json:"error,omitempty"`
}

// RepositoryUnlockRequest is the body of POST .../backuprepos/NAME/unlock.
type RepositoryUnlockRequest struct {
	// Lock, when set, removes that one lock (its name or ID) even when it is live: for a
	// holder known to be gone that the repository cannot tell is gone (another host).
	// Empty: every stale lock is removed and live ones stay.
	Lock string `json:"lock,omitempty"`
}

// RepositoryUnlockResult says what an unlock removed and what stays.
type RepositoryUnlockResult struct {
	Removed   []RepositoryLock `json:"removed"`
	Remaining []RepositoryLock `json:"remaining"`
}

// BackupRequest is the body of POST .../backups.
type BackupRequest struct {
	Workloads []string `json:"workloads"`
	// Group names the backup's retention group; empty: the workloads, joined with ",".
	Group string `json:"group,omitempty"`
	Repo  string `json:"repo,omitempty"`
	// ForceRead reads every file, even those the file index says are unchanged since
	// the last backup.
	ForceRead bool `json:"forceRead,omitempty"`
}

// Backup is one backup in a repository.
type Backup struct {
	ID        string    `json:"id"`
	Repo      string    `json:"repo"`
	Time      time.Time `json:"time"`
	Workloads []string  `json:"workloads"`
	Group     string    `json:"group,omitempty"`
	// Size is the total size of the backup's files; StoredBytes what this backup added to
	// the repository (new chunks, compressed and encrypted).
	Size        int64 `json:"size"`
	StoredBytes int64 `json:"storedBytes"`
	// UnchangedBytes is the part of Size taken from the last backup without reading it
	// (files the index says are unchanged); ReadBytes the rest, read and chunked.
	UnchangedBytes int64 `json:"unchangedBytes"`
	ReadBytes      int64 `json:"readBytes"`
	// Consistency is "application" when every workload's pre hook ran first, "crash"
	// when none had hooks, "mixed" otherwise.
	Consistency string `json:"consistency"`
	// FrozenTogether is true when all the workloads' instances were paused together, so
	// the backup is one point in time; false when they were copied one after another.
	FrozenTogether bool     `json:"frozenTogether"`
	Warnings       []string `json:"warnings,omitempty"`
	// Seconds is how long the backup took, snapshot and upload.
	Seconds float64 `json:"seconds,omitempty"`
}

// BackupProgress reports how far a backup's upload is.
type BackupProgress struct {
	Workload string `json:"workload"`
	File     string `json:"file"`
	// Bytes of the whole backup uploaded so far, of Total.
	Bytes int64 `json:"bytes"`
	Total int64 `json:"total"`
	// Unchanged is the part of Bytes taken from the last backup without reading it,
	// Read the part read.
	Unchanged int64 `json:"unchanged"`
	Read      int64 `json:"read"`
}

// BackupStreamLine is one line of the answer to POST .../backups: progress lines, then
// either the backup or the error that ended it.
type BackupStreamLine struct {
	Progress *BackupProgress `json:"progress,omitempty"`
	Backup   *Backup         `json:"backup,omitempty"`
	Error    *BackupError    `json:"error,omitempty"`
}

// BackupError is a failure reported inside a stream, with the API's reason word
// (Invalid, NotFound, InternalError, ...).
type BackupError struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// BackupVerifyResult is the answer to POST .../backups/ID/verify.
type BackupVerifyResult struct {
	ID       string   `json:"id"`
	OK       bool     `json:"ok"`
	Files    int      `json:"files"`
	Chunks   int      `json:"chunks"`
	Bytes    int64    `json:"bytes"`
	Problems []string `json:"problems,omitempty"`
}

// BackupPruneRequest is the body of POST .../backups/prune: keep the newest KeepLast
// backups of each group, and the newest of each of the last KeepHourly hours, KeepDaily
// days and KeepWeekly weeks that have one; delete the rest.
type BackupPruneRequest struct {
	Repo       string `json:"repo,omitempty"`
	KeepLast   int    `json:"keepLast,omitempty"`
	KeepHourly int    `json:"keepHourly,omitempty"`
	KeepDaily  int    `json:"keepDaily,omitempty"`
	KeepWeekly int    `json:"keepWeekly,omitempty"`
	DryRun     bool   `json:"dryRun,omitempty"`
}

// BackupPruneResult says what a prune kept and deleted (or would, with DryRun).
type BackupPruneResult struct {
	Kept    []Backup `json:"kept"`
	Deleted []Backup `json:"deleted"`
	// FreedBytes is what the removed chunks took in the repository.
	FreedBytes int64 `json:"freedBytes"`
	DryRun     bool  `json:"dryRun,omitempty"`
}

// RestoreRequest is the body of POST .../backups/ID/restore.
type RestoreRequest struct {
	Repo string `json:"repo,omitempty"`
	// As renames the workload when one is restored; with several, each is restored as
	// NAME-AS.
	As string `json:"as,omitempty"`
	// Segment replaces the saved spec.segment.
	Segment string `json:"segment,omitempty"`
	// Workloads restores only these of the backup's workloads (default all).
	Workloads []string `json:"workloads,omitempty"`
	// Annotations are added to the restored workloads.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// RestoreResult says what a restore recreated.
type RestoreResult struct {
	Backup    string             `json:"backup"`
	Time      time.Time          `json:"time"`
	Workloads []RestoredWorkload `json:"workloads"`
	Seconds   float64            `json:"seconds"`
}

// RestoredWorkload is one workload a restore recreated.
type RestoredWorkload struct {
	// From is its name in the backup, Name its name now.
	From string `json:"from"`
	Name string `json:"name"`
	Tier Tier   `json:"tier"`
}

// DrillRequest is the body of POST .../drills: Target is a backup group or a workload.
type DrillRequest struct {
	Target string `json:"target"`
	Repo   string `json:"repo,omitempty"`
}

// DrillResult is what a restore drill measured.
type DrillResult struct {
	Backup string `json:"backup"`
	// RTOSeconds is the time from the drill's start until every restored workload ran
	// and passed its health checks; RPOSeconds the age of the backup at the start.
	RTOSeconds float64  `json:"rtoSeconds"`
	RPOSeconds float64  `json:"rpoSeconds"`
	Workloads  []string `json:"workloads"`
	// Result is "succeeded" or "failed"; Message says what was checked or what failed.
	Result  string `json:"result"`
	Message string `json:"message,omitempty"`
	// Segment is the scratch segment the drill ran in (deleted afterwards).
	Segment string `json:"segment"`
}

// Drill results.
const (
	DrillSucceeded = "succeeded"
	DrillFailed    = "failed"
)
