// Package metrics is what strata serve reports at GET /metrics, in the
// Prometheus text format: one registry per daemon holding the instances'
// usage, the workloads' replicas, and the daemon's own work (store, API,
// reconciles).
//
// # Terms
//
//   - A scrape is one GET /metrics. Instance and workload metrics are not
//     kept between scrapes: the Collector reads the store (workloads and
//     their status.instances) and asks each instance's driver for its usage
//     at every scrape, so they always say what is true now and a deleted
//     workload's series disappear with it.
//   - Usage is what a driver that implements runtime.StatsReader measures:
//     CPU seconds since the instance (re)started, so the counter starts again
//     from zero after a restart (Prometheus' rate() treats that as a reset),
//     and the memory it holds. Instances whose driver cannot tell, or that do
//     not run, have no usage series.
//   - Daemon metrics (API requests, reconcile durations) are counted as they
//     happen, through Middleware and ObserveReconcile.
//
// docs/monitoring.md lists every metric.
package metrics
