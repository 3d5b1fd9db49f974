package metrics

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/store"
)

var (
	instanceLabels = []string{"workload", "instance", "tier", "segment"}
	workloadLabels = []string{"workload"}

	descCPU = prometheus.NewDesc(namespace+"_instance_cpu_seconds_total",
		"CPU time the instance has used since it last started, as its driver measures it.", instanceLabels, nil)
	descMemory = prometheus.NewDesc(namespace+"_instance_memory_bytes",
		"Memory the instance holds now, as its driver measures it.", instanceLabels, nil)
	descRestarts = prometheus.NewDesc(namespace+"_instance_restarts_total",
		"Times strata restarted the instance's slot (status.instances[].restarts).", instanceLabels, nil)
	descUp = prometheus.NewDesc(namespace+"_instance_up",
		"1 while the instance runs, 0 otherwise.", instanceLabels, nil)
	descDesired = prometheus.NewDesc(namespace+"_workload_replicas_desired",
		"Replicas the workload should run: spec.replicas, or with spec.scaling the scaler's count (status.scaling.replicas).", workloadLabels, nil)
	descRunning = prometheus.NewDesc(namespace+"_workload_replicas_running",
		"Instances of the workload that run.", workloadLabels, nil)
	descInfo = prometheus.NewDesc(namespace+"_workload_info",
		"Always 1; labels say the workload's tier (empty until assessed) and segment.", []string{"workload", "tier", "segment"}, nil)
)

// Collector reports workloads and their instances at every scrape, from the store and
// the drivers. See the package documentation.
type Collector struct {
	store   *store.Store
	drivers *runtime.Registry
	timeout time.Duration
	log     *slog.Logger
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector over st; drivers may be nil (no usage), timeout
// bounds the drivers' answers in one scrape.
func NewCollector(st *store.Store, drivers *runtime.Registry, timeout time.Duration, log *slog.Logger) *Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Collector{store: st, drivers: drivers, timeout: timeout, log: log}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCPU, descMemory, descRestarts, descUp, descDesired, descRunning, descInfo} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	recs, _, err := c.store.List(ctx, v1alpha1.KindWorkload)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descInfo, err)
		return
	}
	for _, rec := range recs {
		w, err := objects.Workload(rec)
		if err != nil {
			c.log.Warn("metrics: workload not readable", "workload", rec.Name, "err", err)
			continue
		}
		c.collectWorkload(ctx, ch, w)
	}
}

func (c *Collector) collectWorkload(ctx context.Context, ch chan<- prometheus.Metric, w *v1alpha1.Workload) {
	name, segment := w.Metadata.Name, w.Spec.Segment
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, name, string(w.Status.Tier), segment)
	ch <- prometheus.MustNewConstMetric(descDesired, prometheus.GaugeValue, float64(w.DesiredReplicas()), name)
	running := 0
	for _, in := range w.Status.Instances {
		tier := in.Tier
		if tier == "" {
			tier = w.Status.Tier
		}
		labels := []string{name, in.ID, string(tier), segment}
		up := in.State == string(runtime.StateRunning)
		if up {
			running++
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, boolFloat(up), labels...)
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(in.Restarts), labels...)
		if !up {
			continue
		}
		st, ok := readStats(ctx, c.drivers, c.log, tier, in)
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, st.CPUSeconds, labels...)
		ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, float64(st.MemoryBytes), labels...)
	}
	ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, float64(running), name)
}

// readStats asks the driver that runs instance in (of tier) for its usage: the driver
// its status names, the node VM driver for a replica in a node VM, else the tier's.
// False when it cannot tell (no driver, no stats, or the instance ended since its
// status was written).
func readStats(ctx context.Context, drivers *runtime.Registry, log *slog.Logger, tier v1alpha1.Tier, in v1alpha1.Instance) (runtime.Stats, bool) {
	if drivers == nil {
		return runtime.Stats{}, false
	}
	id := in.ID
	d, err := drivers.ForInstance(tier, in.Driver)
	if err != nil {
		return runtime.Stats{}, false
	}
	sr, ok := d.(runtime.StatsReader)
	if !ok {
		return runtime.Stats{}, false
	}
	st, err := sr.Stats(ctx, id)
	if err != nil {
		// An instance that ended since the controller wrote its status is no news.
		if !errors.Is(err, runtime.ErrNotRunning) && !errors.Is(err, runtime.ErrNotFound) {
			log.Warn("metrics: instance usage unknown", "instance", id, "driver", d.Name(), "err", err)
		}
		return runtime.Stats{}, false
	}
	return st, true
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
