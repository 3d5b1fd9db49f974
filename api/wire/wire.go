package wire

import "strata.dev/strata/api/v1alpha1"

// Prefix is the path under which objects are served.
const Prefix = "/apis/" + v1alpha1.GroupVersion + "/"

// Backup routes, under Prefix.
const (
	BackupReposPath = "backuprepos"
	BackupsPath     = "backups"
	DrillsPath      = "drills"
)

// NodesPath lists the daemon's node VMs (v1alpha1.NodeVM items of a List), under Prefix.
const NodesPath = "nodes"

// Status is the body of every error response, and of a successful delete.
type Status struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Code is the HTTP status code.
	Code int `json:"code"`
	// Reason is a CamelCase word: NotFound, AlreadyExists, Conflict, Invalid, Forbidden,
	// Unauthorized, BadRequest, MethodNotAllowed, InternalError, Gone, TooLarge.
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Details lists each problem of an invalid object, one per line as strata prints them.
	Details []string `json:"details,omitempty"`
}

// Reasons of Status.
const (
	ReasonNotFound      = "NotFound"
	ReasonAlreadyExists = "AlreadyExists"
	ReasonConflict      = "Conflict"
	ReasonInvalid       = "Invalid"
	ReasonForbidden     = "Forbidden"
	ReasonUnauthorized  = "Unauthorized"
	ReasonBadRequest    = "BadRequest"
	ReasonGone          = "Gone"
	ReasonTooLarge      = "TooLarge"
	ReasonInternal      = "InternalError"
)

// List is the body of a list response.
type List struct {
	APIVersion      string `json:"apiVersion"`
	Kind            string `json:"kind"`
	ResourceVersion string `json:"resourceVersion"`
	Items           []any  `json:"items"`
}

// SnapshotRequest is the body of POST .../workloads/NAME/snapshots.
type SnapshotRequest struct {
	// Name is the snapshot's name; empty: one is made from the time.
	Name string `json:"name,omitempty"`
	// Memory asks VMs for their whole running state too.
	Memory bool `json:"memory,omitempty"`
}

// ExecRequest is the body of an exec request.
type ExecRequest struct {
	Command []string `json:"command"`
}

// ExecResult is the answer to an exec request.
type ExecResult struct {
	Instance string `json:"instance"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	ExitCode int    `json:"exitCode"`
}
