// Package server is the daemon's HTTP API: Kubernetes-like paths
// (/apis/strata.dev/v1alpha1/workloads/NAME), JSON bodies, errors as JSON Status documents
// with a reason and the HTTP code, and watches as a stream of JSON lines. The routes and
// the bodies that are not objects (Status, List, exec and snapshot requests) are defined
// in api/wire, which clients import instead of this package.
//
// Writes are admitted here: the body is decoded strictly (every problem with its line,
// column and field path), defaulted, validated and, for workloads, assessed, so a stored
// Workload always carries its tier and the reasons for it. A workload whose explicit
// isolation violates the policy is refused unless the request says force=true.
//
// The server only reads and writes the store; controllers act on what it stores.
package server
