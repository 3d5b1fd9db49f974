// Package assess decides the isolation tier of each workload (container < sandbox < vm) and
// explains why. A policy is a list of rules; each rule is a CEL expression over the workload
// and a tier floor. The decision is the strongest floor of the rules that match, and every
// matching rule is a reason. An explicit spec.isolation is honoured, but when it is weaker than
// a floor (or differs from a tier a rule requires exactly) the item carries a violation.
//
// Beside the tier, NodeVM decides where container and sandbox replicas run: inside node VMs of
// their isolation class or on the host's kernel, by the policy's spec.nodeVM (a CEL condition
// over the class) and the workload's placement.nodeVM (docs/node-vms.md).
//
// The engine is pure: the same workloads and policy always give the same report.
package assess
