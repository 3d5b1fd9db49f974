// Package control holds the daemon's controllers. The workload controller makes the
// instances of each Workload match its spec: one instance per replica slot (NAME-0 ..
// NAME-N-1), at the workload's assessed tier, on the driver that serves that tier on the
// host's kernel or, when the node VM decision in its status sends its class into node VMs,
// on the driver that runs them there (nodevms.go decides, the registry's For picks the
// driver; a replica that cannot go where it must is refused, never run elsewhere).
//
// Reconciling reads observed state (the store's Workload and the drivers' instances, found by
// their labels) and converges; it never acts on an event alone, so it is idempotent and a
// restarted daemon re-adopts what runs without duplicating or orphaning anything.
//
// Failures back off (1 s doubling to 5 min): a workload whose reconcile failed is not
// reconciled again before its backoff ends, whether the resync, its own status write or
// an instance's event asks; a slot whose start failed is not started again from the same
// spec before its own backoff ends, while its siblings' health checks go on. A change by
// the user (a new spec, labels or annotations, a delete) acts at once and ends the
// backoff. Exited instances are restarted according to the restart policy, with a
// per-slot backoff. Every change is recorded as an event; repeats fold into one.
//
// A reconcile observes (the stored workload, the drivers' instances, the health checks
// that are due), plans and executes. The plan (plan.go) is a pure function of the
// observation, backoffs and time included, that lists the actions in order; the executor
// (reconcile.go) carries them out, re-reading the workload before each start so that a
// workload deleted, held or scaled down meanwhile starts nothing more. Scenario scripts in
// testdata/plan drive the plan (see the README there); for example
//
//	workload replicas=2
//	instance web-0 running
//	start-failed web-1 msg="image not found"
//	plan
//	----
//	keep web-0 running restarts=0
//	check web-1 is still wanted
//	report web-1 failed restarts=0: image not found; starting again in 1s
//	write the status
//	requeue 1s
//
// The scaler (scaler.go) decides the replica count of workloads with spec.scaling. Its loop
// is internal/scaler's, which the Kubernetes operator runs too; storeHost is that loop's host
// here: workloads from the store, demand from the usage history, start-up times measured
// by the workload controller (StartupTimes), and the host's capacity.
//
// The segment controller (segments.go) sets up the segments that Segment objects declare
// and workloads use, writes their status, and computes from the objects the state the
// host enforces (netstate.State: flows, egress, published ports, names), parsing
// addresses and applying the API's defaults once, for the network (SegmentNetwork) to
// enforce.
//
// Beside them, the host reporter (host.go) keeps this machine's Host object current: at
// every heartbeat it runs the drivers' checks, counts what the running instances were
// given, and writes the result; its checks also answer the daemon's /readyz.
package control
