// Package render turns strata documents (Workloads and Segments) into the Kubernetes objects
// that run the same estate on a cluster with KubeVirt. It is a pure function of its input:
// the same documents and options always give the same objects, in the same order.
//
// # Terms
//
//   - Tier: the isolation a workload runs under, decided by assessment (package assess) before
//     anything is rendered. An explicit spec.isolation is honoured as assessment honours it;
//     a workload that the policy raises to vm becomes a VirtualMachine even if it only names
//     an image.
//   - Object: a typed Kubernetes object (k8s.io/api, kubevirt.io/api) with its TypeMeta set,
//     ready to be applied or encoded.
//   - Note: something a person must know or do that the objects cannot say (an image that must
//     be a containerDisk image, a disk to upload). Each names its workload.
//
// # The mapping
//
//	container tier   apps/v1 Deployment (StatefulSet when the workload has volumes, one
//	                 volumeClaimTemplate per volume) + core/v1 Service for its ports
//	sandbox tier     the same, with runtimeClassName (Options.RuntimeClass), and one
//	                 node.k8s.io/v1 RuntimeClass of that name, whose pod overhead is
//	                 gVisor's memory (SandboxMemoryOverhead)
//	vm tier          kubevirt.io/v1 VirtualMachine per replica + core/v1 Service selecting the
//	                 VMs' pods for its ports
//	Segment          networking.k8s.io/v1 NetworkPolicy "segment-<name>" selecting the
//	                 segment's pods: ingress from the same segment and from each allow flow;
//	                 egress everywhere (egress allow) or only to the same segment, the
//	                 destinations of its flows and the cluster DNS (egress deny)
//	published port   a LoadBalancer Service port, and a NetworkPolicy "<workload>-published"
//	                 that admits anyone to the port it forwards to
//
// Every object carries the labels strata.dev/segment, strata.dev/workload and strata.dev/tier
// (where they apply), app.kubernetes.io/name and app.kubernetes.io/managed-by=strata; pod
// templates carry them too, so that Services and NetworkPolicies select by them. The segments
// that workloads use without a Segment document get the policy of a defaulted segment (egress
// allow, no flows in), as the single-host daemon gives them.
//
// docs/kubernetes.md has the full table, field by field.
package render
