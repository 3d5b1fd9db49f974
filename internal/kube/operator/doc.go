// Package operator runs strata inside a Kubernetes cluster: a controller (controller-runtime)
// that turns strata.dev/v1alpha1 Workload and Segment resources (package crd) into the same
// objects `strata export kubernetes` renders (package render), applies them (package apply)
// and writes each Workload's status back.
//
// # Terms
//
//   - Namespace reconcile: the unit of work is a namespace, not one resource. Segments shape
//     the NetworkPolicies of the workloads in them, and a segment that no Segment resource
//     defines gets a default policy owned by the workloads that use it, so the controller
//     renders every live Workload and Segment of a namespace together, applies the result as
//     field manager "strata-operator" in apply set "strata-operator" (label
//     strata.dev/apply-set), and prunes what is no longer rendered.
//   - Owner: every namespaced object is owned by the resource it comes from (a workload's
//     objects by its Workload, a segment's policy by its Segment, a default segment policy by
//     every Workload in that segment), so that deleting a resource lets Kubernetes' garbage
//     collector remove its objects even when the operator is not running.
//   - Finalizer strata.dev/operator: every live Workload carries it. A RuntimeClass is
//     cluster-scoped and cannot be owned by a namespaced resource: when a Workload is deleted,
//     the controller prunes its objects, deletes the RuntimeClass if no strata Deployment or
//     StatefulSet in any namespace still names it (the last user went), and only then removes
//     the finalizer.
//   - Verdict: what assessment and rendering said of one Workload. A Workload whose explicit
//     isolation violates the policy is not applied (condition Assessed=False,
//     PolicyViolation) unless it carries the annotation strata.dev/force: "true", as the
//     daemon refuses it without --force; one that cannot be rendered is not applied either
//     (Ready=False, RenderFailed). Their objects from before are kept, not pruned.
//   - Status: tier and reasons from assessment; replicas and ready replicas, phase and the
//     VMs' printable statuses from the cluster (apply.Status); conditions Assessed, Ready
//     and Degraded.
//   - Predictive scaler (Scaler, scaler.go): for Workloads with spec.scaling.predictive, a
//     loop beside the reconcile, run by the elected operator only. Every interval it asks a
//     Source for the Workload's demand (MetricsSource: the metrics API's PodMetrics, an hour
//     of samples in memory) and decides the floor under its HorizontalPodAutoscaler with
//     scale.Decide in floor mode, in the scaling loop the daemon runs too (internal/scaler,
//     with clusterHost as its host). A changed floor goes to
//     status.scaling and a Scaled event; the reconcile renders the HPA with that floor as
//     minReplicas (within spec.scaling.min and max), so one field manager writes the HPA and a
//     reconcile never undoes the floor. The HPA keeps scaling reactively above it.
//
// Permissions lists every API call the controller makes; deploy/operator's RBAC grants
// exactly those, and a test holds the two, and the calls, together.
package operator
