// Package scale decides how many replicas a workload needs as its demand changes, and
// replays demand traces to compare ways of deciding. It is pure computation: the clock is
// passed in, randomness is seeded, and nothing here starts or stops a replica.
//
// Terms:
//
//   - Demand is the CPU a workload uses, in cores, averaged over one interval of a trace.
//   - A replica's capacity is the demand it serves at the target utilization: its CPU request
//     (resources.cpu) times targetCPUPercent/100. Capacity is the ready replicas' capacity.
//   - Slack is capacity not needed: capacity minus demand when capacity is larger. The slack
//     percentage is the slack summed over time divided by the capacity summed over time.
//   - Shortage is demand above capacity. The shortage percentage is the share of time in which
//     demand exceeds the ready replicas' capacity.
//   - Start-up time is how long a new replica of a tier takes to become ready: containers start
//     fastest, VMs slowest.
//   - Lead time is how far ahead a predictive policy provisions: the tier's start-up time plus
//     one decision interval, so that replicas ordered now are ready when forecast demand arrives.
//   - A floor is the fewest replicas a reactive scaler that runs elsewhere may run: in a
//     Kubernetes cluster, the HorizontalPodAutoscaler's minReplicas. The operator raises it
//     ahead of forecast demand and lets the HPA scale reactively above it.
//
// Decide (decide.go) is the live decision, one implementation for both callers: the daemon's
// scaler (internal/control) decides replica counts on one host, and the operator's predictive
// scaler (internal/kube/operator) decides floors in a cluster.
//
// Three policies are compared: reactive (the Kubernetes HPA algorithm, hpa.go), predictive
// (a seasonal forecast of demand, forecast.go, with a reactive floor) and an oracle that knows
// the future and provisions exactly what each interval needs (sim.go).
package scale
