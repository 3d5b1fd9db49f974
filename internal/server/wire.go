package server

import "strata.dev/strata/api/wire"

// The API's wire types and routes live in api/wire, where clients find them without
// importing the server. The server's code uses them under these names.

// Prefix is the path under which objects are served.
const Prefix = wire.Prefix

// Backup routes, under Prefix.
const (
	BackupReposPath = wire.BackupReposPath
	BackupsPath     = wire.BackupsPath
	DrillsPath      = wire.DrillsPath
)

// NodesPath lists the node VMs, under Prefix.
const NodesPath = wire.NodesPath

// Status is the body of every error response, and of a successful delete.
type Status = wire.Status

// Reasons of Status.
const (
	ReasonNotFound      = wire.ReasonNotFound
	ReasonAlreadyExists = wire.ReasonAlreadyExists
	ReasonConflict      = wire.ReasonConflict
	ReasonInvalid       = wire.ReasonInvalid
	ReasonForbidden     = wire.ReasonForbidden
	ReasonUnauthorized  = wire.ReasonUnauthorized
	ReasonBadRequest    = wire.ReasonBadRequest
	ReasonGone          = wire.ReasonGone
	ReasonTooLarge      = wire.ReasonTooLarge
	ReasonInternal      = wire.ReasonInternal
)

// List is the body of a list response.
type List = wire.List

// SnapshotRequest is the body of POST .../workloads/NAME/snapshots.
type SnapshotRequest = wire.SnapshotRequest

// ExecRequest is the body of an exec request.
type ExecRequest = wire.ExecRequest

// ExecResult is the answer to an exec request.
type ExecResult = wire.ExecResult
