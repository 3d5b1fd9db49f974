package metrics

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/store"
)

// History defaults: a sample every 10 s, an hour of them.
const (
	DefaultHistoryInterval = 10 * time.Second
	DefaultHistoryLength   = 360
)

// HistoryOptions configure a History.
type HistoryOptions struct {
	Store   *store.Store
	Drivers *runtime.Registry
	// Interval is the time between samples (DefaultHistoryInterval); Length is how many
	// samples each instance keeps (DefaultHistoryLength).
	Interval time.Duration
	Length   int
	Clock    func() time.Time
	Logger   *slog.Logger
}

// History samples every running instance's CPU and memory at a fixed interval and keeps
// the last Length samples of each in memory: a bounded ring per instance, about 40
// bytes a sample. It is lost when the daemon stops; Prometheus keeps the long term.
type History struct {
	o HistoryOptions

	mu     sync.Mutex
	series map[string]*series // workload/instance -> samples
}

// series is one instance's ring of samples.
type series struct {
	workload, instance string
	points             []v1alpha1.UsagePoint // ring; start is the oldest once full
	start              int
	lastCPU            float64
	lastAt             time.Time
	seen               time.Time // when it last ran
}

// NewHistory returns a History; Run samples.
func NewHistory(o HistoryOptions) *History {
	if o.Interval <= 0 {
		o.Interval = DefaultHistoryInterval
	}
	if o.Length <= 0 {
		o.Length = DefaultHistoryLength
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &History{o: o, series: map[string]*series{}}
}

// Run samples now and then every Interval until ctx ends.
func (h *History) Run(ctx context.Context) error {
	t := time.NewTicker(h.o.Interval)
	defer t.Stop()
	for {
		h.Sample(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Sample takes one sample of every running instance and forgets instances that have not
// run for as long as the history reaches back.
func (h *History) Sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, h.o.Interval)
	defer cancel()
	recs, _, err := h.o.Store.List(ctx, v1alpha1.KindWorkload)
	if err != nil {
		h.o.Logger.Warn("history: workloads not readable", "err", err)
		return
	}
	type sample struct {
		key, workload, instance string
		started                 *time.Time
		stats                   runtime.Stats
	}
	var got []sample
	for _, rec := range recs {
		w, err := objects.Workload(rec)
		if err != nil || w.Status == nil {
			continue
		}
		for _, in := range w.Status.Instances {
			if in.State != string(runtime.StateRunning) {
				continue
			}
			tier := in.Tier
			if tier == "" {
				tier = w.Status.Tier
			}
			st, ok := readStats(ctx, h.o.Drivers, h.o.Logger, tier, in)
			if !ok {
				continue
			}
			got = append(got, sample{key: w.Metadata.Name + "/" + in.ID, workload: w.Metadata.Name, instance: in.ID, started: in.StartedAt, stats: st})
		}
	}
	now := h.o.Clock()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range got {
		se := h.series[s.key]
		if se == nil {
			se = &series{workload: s.workload, instance: s.instance}
			h.series[s.key] = se
		}
		se.add(now, s.started, s.stats, h.o.Length)
	}
	horizon := time.Duration(h.o.Length) * h.o.Interval
	for k, se := range h.series {
		if now.Sub(se.seen) > horizon {
			delete(h.series, k)
		}
	}
}

// add appends a sample. The CPU rate is the CPU time used since the previous sample over
// the time between them; after a restart (the counter went back) or for the first
// sample, it is the average since the instance started, when that is known.
func (se *series) add(now time.Time, started *time.Time, st runtime.Stats, length int) {
	cores := -1.0
	switch {
	case !se.lastAt.IsZero() && st.CPUSeconds >= se.lastCPU && now.After(se.lastAt):
		cores = (st.CPUSeconds - se.lastCPU) / now.Sub(se.lastAt).Seconds()
	case started != nil && now.After(*started):
		cores = st.CPUSeconds / now.Sub(*started).Seconds()
	}
	se.lastCPU, se.lastAt, se.seen = st.CPUSeconds, now, now
	if cores < 0 {
		return // nothing to compare with yet
	}
	p := v1alpha1.UsagePoint{Time: now.UTC(), CPUCores: cores, MemoryBytes: st.MemoryBytes}
	if len(se.points) < length {
		se.points = append(se.points, p)
		return
	}
	se.points[se.start] = p
	se.start = (se.start + 1) % length
}

// ordered returns the samples oldest first.
func (se *series) ordered() []v1alpha1.UsagePoint {
	out := make([]v1alpha1.UsagePoint, 0, len(se.points))
	out = append(out, se.points[se.start:]...)
	return append(out, se.points[:se.start]...)
}

// Workload returns the samples of workload's instances (of one instance when instance
// is not empty), instances sorted by ID.
func (h *History) Workload(workload, instance string) v1alpha1.UsageHistory {
	out := v1alpha1.UsageHistory{Workload: workload, IntervalSeconds: int32(h.o.Interval / time.Second), Instances: []v1alpha1.InstanceUsage{}}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, se := range h.series {
		if se.workload != workload || (instance != "" && se.instance != instance) || len(se.points) == 0 {
			continue
		}
		out.Instances = append(out.Instances, v1alpha1.InstanceUsage{Instance: se.instance, Points: se.ordered()})
	}
	slices.SortFunc(out.Instances, func(a, b v1alpha1.InstanceUsage) int {
		switch {
		case a.Instance < b.Instance:
			return -1
		case a.Instance > b.Instance:
			return 1
		}
		return 0
	})
	return out
}
