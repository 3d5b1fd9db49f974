// Package apply puts rendered strata objects (package render) into a Kubernetes cluster and
// reads back how the workloads are doing.
//
// # Terms
//
//   - Server-side apply: the API server merges each object into what it stores and records
//     which field manager owns which field. strata applies as field manager "strata" (the
//     operator as "strata-operator"). A field that another manager owns is a conflict:
//     Apply stops and names the object, the other manager and the fields, unless
//     Options.ForceConflicts takes them over.
//   - Apply set: the objects one `strata apply` owns in one namespace, named by
//     Options.Set (default: the namespace). Every applied object carries the label
//     strata.dev/apply-set=<set> next to app.kubernetes.io/managed-by=strata.
//   - Prune: after applying, delete the objects of the kinds strata renders (Deployment,
//     StatefulSet, HorizontalPodAutoscaler, Service, NetworkPolicy, VirtualMachine) in the
//     namespace that carry both labels with this set's name and were not applied this time.
//     An object without the two labels is never touched. A RuntimeClass is cluster-wide and
//     shared by the sandboxes of every namespace: it is pruned only when it carries both
//     labels (any set), was not applied, and no Deployment or StatefulSet managed by strata
//     in any namespace still names it.
//   - Outcome: what applying did to one object: created, configured (something changed),
//     unchanged (the object's resourceVersion did not move), or pruned.
//   - Ready: a Deployment or StatefulSet whose controller has seen its latest generation and
//     whose ready replicas are all it wants; a VirtualMachine whose status says ready (or
//     printableStatus Running), or that is meant to be halted; Services, NetworkPolicies and
//     RuntimeClasses at once.
//
// Apply works on unstructured objects, so it needs no scheme: only a client whose REST mapper
// knows the kinds (KubeVirt's VirtualMachine needs KubeVirt, or its CRD, in the cluster).
// Status reads the workloads back from the labels render puts on every object.
package apply
