package metrics

import (
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/store"
)

// namespace prefixes every metric's name.
const namespace = "strata"

// Options configure Metrics.
type Options struct {
	// Store holds the workloads whose instances are reported.
	Store *store.Store
	// StorePath is the store's bbolt file, whose size is reported; "": not reported.
	StorePath string
	// Drivers are asked for their instances' usage (those that implement
	// runtime.StatsReader); nil: no usage is reported.
	Drivers *runtime.Registry
	// StatsTimeout bounds the drivers' answers during one scrape (default 5s).
	StatsTimeout time.Duration
	// Process adds the Go runtime's and the daemon process's own metrics (go_*,
	// process_*).
	Process bool
	Logger  *slog.Logger
}

// Metrics is the daemon's registry and the instruments it feeds as things happen.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	reconcile prometheus.Histogram
	probes    *prometheus.CounterVec
	scaling   *prometheus.CounterVec
	startup   *prometheus.HistogramVec
}

// New builds the registry with the collector of instances and workloads, the store's
// size, and the API and reconcile instruments.
func New(o Options) *Metrics {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StatsTimeout <= 0 {
		o.StatsTimeout = 5 * time.Second
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "api_requests_total",
			Help: "API requests answered, by route (the pattern that matched) and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "api_request_duration_seconds",
			Help:    "How long API requests took, by route; watches and followed logs last as long as they stream.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		reconcile: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "reconcile_duration_seconds",
			Help:    "How long one reconcile of one workload took, failed ones included.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "instance_health_check_failures_total",
			Help: "Health probes of the instance that failed, since the daemon started.",
		}, []string{"workload", "instance"}),
		scaling: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "scaling_decisions_total",
			Help: "Changes of a workload's replica count by the scaler, by direction (out: more replicas, in: fewer), since the daemon started.",
		}, []string{"workload", "direction"}),
		startup: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "instance_startup_seconds",
			Help:    "How long instances took from their start until they could serve (their first passing health check, or running without one), by tier; the scaler's lead time.",
			Buckets: []float64{.1, .25, .5, 1, 2, 3, 5, 10, 20, 30, 60},
		}, []string{"tier"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.reconcile, m.probes, m.scaling, m.startup, NewCollector(o.Store, o.Drivers, o.StatsTimeout, o.Logger))
	if o.StorePath != "" {
		path := o.StorePath
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "store_size_bytes",
			Help: "Size of the store's bbolt file.",
		}, func() float64 {
			fi, err := os.Stat(path)
			if err != nil {
				return 0
			}
			return float64(fi.Size())
		}))
	}
	if o.Process {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry returns the daemon's registry, for tests and for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveReconcile records how long one reconcile took.
func (m *Metrics) ObserveReconcile(d time.Duration) { m.reconcile.Observe(d.Seconds()) }

// ObserveProbeFailure counts one failed health probe of an instance.
func (m *Metrics) ObserveProbeFailure(workload, instance string) {
	m.probes.WithLabelValues(workload, instance).Inc()
}

// ObserveScaling counts one change of a workload's replica count by the scaler; direction
// is "out" (more replicas) or "in" (fewer).
func (m *Metrics) ObserveScaling(workload, direction string) {
	m.scaling.WithLabelValues(workload, direction).Inc()
}

// ObserveStartup records how long one instance of tier took to serve.
func (m *Metrics) ObserveStartup(tier v1alpha1.Tier, d time.Duration) {
	m.startup.WithLabelValues(string(tier)).Observe(d.Seconds())
}

// WatchDrivers reports the driver checks of the last heartbeat at every scrape, as
// strata_driver_ready{check,tiers} (1 ready, 0 not), without probing again. Call it once.
func (m *Metrics) WatchDrivers(last func() []v1alpha1.DriverStatus) {
	m.reg.MustRegister(driverCollector(last))
}

var descDriverReady = prometheus.NewDesc(namespace+"_driver_ready",
	"1 when the driver check passed at the last heartbeat, 0 when it failed (see strata describe host).",
	[]string{"check", "tiers"}, nil)

// driverCollector reports the checks its function returns.
type driverCollector func() []v1alpha1.DriverStatus

func (d driverCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descDriverReady }

func (d driverCollector) Collect(ch chan<- prometheus.Metric) {
	for _, c := range d() {
		tiers := make([]string, len(c.Tiers))
		for i, t := range c.Tiers {
			tiers[i] = string(t)
		}
		ch <- prometheus.MustNewConstMetric(descDriverReady, prometheus.GaugeValue, boolFloat(c.Ready), c.Name, strings.Join(tiers, ","))
	}
}

// WatchQueue reports depth() as strata_reconcile_queue_depth at every scrape: how many
// workloads wait for a reconcile. Call it once.
func (m *Metrics) WatchQueue(depth func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "reconcile_queue_depth",
		Help: "Workloads scheduled for a reconcile, now or after a delay.",
	}, func() float64 { return float64(depth()) }))
}
