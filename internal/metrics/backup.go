package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Backups are the instruments of workloads' backups: when each workload was last backed
// up, and how long backups take.
type Backups struct {
	lastSuccess *prometheus.GaugeVec
	duration    prometheus.Histogram
	now         func() time.Time
}

// NewBackups registers the backup instruments in reg.
func NewBackups(reg prometheus.Registerer) *Backups {
	b := &Backups{
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "backup_last_success_timestamp_seconds",
			Help: "When the workload's last successful backup finished (Unix time), since the daemon started.",
		}, []string{"workload"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "backup_duration_seconds",
			Help:    "How long backups took, snapshot and upload, failed ones included.",
			Buckets: []float64{.1, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}),
		now: time.Now,
	}
	reg.MustRegister(b.lastSuccess, b.duration)
	return b
}

// ObserveBackup records one backup of the workloads: its duration, and for a success the
// time it finished.
func (b *Backups) ObserveBackup(workloads []string, d time.Duration, ok bool) {
	b.duration.Observe(d.Seconds())
	if !ok {
		return
	}
	at := float64(b.now().UnixNano()) / 1e9
	for _, w := range workloads {
		b.lastSuccess.WithLabelValues(w).Set(at)
	}
}
