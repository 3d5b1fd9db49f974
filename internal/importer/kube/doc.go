// Package kube imports Kubernetes manifests as strata Workloads.
//
// Each workload object (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob,
// and the items of List documents such as `kubectl get -o yaml` prints) becomes one Workload
// built from its pod template, with its traits inferred from the pod spec: privileged
// containers, added capabilities, host namespaces, hostPath volumes, sysctls that need a
// kernel of their own, Windows node selection, and the runtime class. The annotations
// strata.dev/trust, strata.dev/data, strata.dev/tenancy, strata.dev/isolation and
// strata.dev/tenant carry what a manifest cannot say by itself.
//
// Objects are decoded into the Kubernetes API types leniently: fields strata does not read
// are ignored. Every workload keeps its source (file, line, kind, and the original
// namespace/name when strata had to change it). Other kinds are listed as skipped, and
// every problem is reported with its file, line and column while the rest still imports.
package kube
