// Package kube imports Kubernetes manifests as strata Workloads.
//
// Each workload object (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
// ReplicationController, Job, CronJob, any other object with a pod template at
// spec.template.spec such as an Argo Rollout, and the items of List documents such as
// `kubectl get -o yaml` prints) becomes one Workload built from its pod template, with its
// traits inferred from the pod spec: privileged containers, added capabilities, host
// namespaces, hostPath volumes (graded by path and read-only mounts), unconfined seccomp and
// AppArmor profiles, privilege escalation, unmasked /proc, sysctls that need a kernel of
// their own, Windows node selection, and the runtime class. The annotations strata.dev/trust,
// strata.dev/data, strata.dev/tenancy, strata.dev/isolation and strata.dev/tenant carry what
// a manifest cannot say by itself.
//
// What a Workload cannot carry (init and extra containers, config map and secret volumes,
// variables from elsewhere, other probes, schedules, placement constraints) is listed as
// notes on the inventory item, each at its line and field path. Kustomizations are skipped
// with what to do, other kinds are listed as skipped.
//
// Objects are decoded into the Kubernetes API types leniently: fields strata does not read
// are ignored, and every value that does not fit its type is reported at its own line and
// column with its full field path, all of an object's problems at once, while the other
// objects still import. Importer takes documents one at a time and keeps none of them, so
// a caller reading a stream holds one parsed document at a time.
package kube
