// Package control holds the daemon's controllers. The workload controller makes the
// instances of each Workload match its spec: one instance per replica slot (NAME-0 ..
// NAME-N-1), at the workload's assessed tier, on the driver that serves that tier.
//
// Reconciling reads observed state (the store's Workload and the drivers' instances, found by
// their labels) and converges; it never acts on an event alone, so it is idempotent and a
// restarted daemon re-adopts what runs without duplicating or orphaning anything. Failed
// steps are retried with exponential backoff; exited instances are restarted according to
// the restart policy, with a per-slot backoff. Every change is recorded as an event.
package control
