// Package scaler is the scaling loop that the daemon and the Kubernetes operator share.
// Every interval a Loop lists the workloads of its Host, decides each one's count with
// scale.Decide, and writes the decisions back through the Host; between rounds it remembers,
// per workload, the reactive formula's recommendations (a scale.HPA, for its stabilization
// window) and whether a warning was given.
//
// Terms:
//
//   - A host is where the workloads live: the daemon's store on one host (internal/control),
//     or a Kubernetes cluster (internal/kube/operator). It lists the workloads, measures
//     their demand and lead time, writes status.scaling and tells of decisions.
//   - A round is one pass over the host's workloads. A workload the host leaves out of a round
//     is forgotten; one it lists with Skip is left alone and remembered.
//   - The count is what a decision sets: the replica count the daemon runs, or the floor
//     (minReplicas) under a HorizontalPodAutoscaler in a cluster. Decisions go to
//     status.scaling: replicas, and lastDecision with its reason when the count changed.
//   - A hold is a workload that cannot be decided for now (no CPU request, no metrics): the
//     loop warns once, and again only after a decision went through.
//
// The loop holds no policy of its own: what to decide is scale.Decide, what to measure and
// where to write is the host's. It imports the API types and internal/scale only, so that
// neither the daemon's controllers nor the operator import the other.
package scaler
