// Package place is strata's placement planner: given workloads with their decided isolation
// tiers and a fleet of hosts, it plans which node VMs to create and where every replica runs.
//
// The model (DESIGN.md section 3): vm replicas are VMs on hosts; container and sandbox replicas
// are packed into node VMs created from the fleet's node shapes, and node VMs are placed on
// hosts. A node VM holds replicas of one isolation class only. Capacity holds at both levels
// with every overhead; spread and hostSelector constraints hold for every replica.
//
// The planner is a pure function: Plan reads its input and never changes it, has no clock and
// no global state, and gives the same plan for the same input. It works in integer milli-CPU
// and bytes throughout.
//
// The algorithm, in order: per isolation class, choose the node shape that uses the least host
// capacity for the class's replicas; place replicas in decreasing order of size, most
// constrained first, each into the best-fitting open node VM of its class or a new node VM on
// the best-fitting host (a norm-based best fit among a bounded number of candidates found
// through capacity trees); then improve within a budget of steps: shrink node VMs to the
// smallest shape that holds them, merge under-filled node VMs, drain the least-used hosts, and
// balance the load. docs/placement.md describes each step and the lower bound.
package place
