package control

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/scale"
	"strata.dev/strata/internal/scaler"
	"strata.dev/strata/internal/store"
)

// The scaler changes the replica count of workloads that have spec.scaling, live, on this
// host. Terms (docs/scaling.md explains the model):
//
//   - Demand is the CPU, in cores, that a workload's running instances used, each averaged
//     over the demand window (the last minute) of the usage history.
//   - Utilization is demand per measured replica over the per-replica CPU request
//     (resources.cpu); the target is targetCPUPercent of that request.
//   - Reactive: the Kubernetes HPA formula (scale.HPA) on utilization, with the scale-in
//     cooldown as its scale-down stabilization window.
//   - Predictive: a forecast of demand over the lead time (leadSeconds, or the tier's start-up
//     time plus one decision interval), fitted on the usage history. The scaler orders the
//     replicas the forecast needs at the target, and removes none while the forecast rises.
//
// The decision itself is scale.Decide, and the loop that makes one every interval is
// internal/scaler's, which the operator's predictive scaler runs too. A decision is written to status.scaling, never to spec.replicas (the user's); the workload
// controller runs status.scaling.replicas instances when spec.scaling is set.

// Defaults of ScalerOptions.
const (
	DefaultScalerInterval = scaler.DefaultInterval
	DefaultDemandWindow   = time.Minute
)

// UsageSource tells what a workload's instances used recently (every instance's when
// instance is empty); *metrics.History is one.
type UsageSource interface {
	Workload(workload, instance string) v1alpha1.UsageHistory
}

// HostCapacity is what the host offers to instances' requests; a zero field is not limited.
type HostCapacity struct {
	CPUMilli    int64
	MemoryBytes int64
}

// ScalerOptions configure the scaler.
type ScalerOptions struct {
	Store  *store.Store
	Usage  UsageSource
	Events Recorder // nil: events are only logged
	Logger *slog.Logger
	Clock  func() time.Time
	// Capacity bounds scaling out: the requests of every workload's replicas, the new ones
	// included, stay within it.
	Capacity HostCapacity
	// Startup is each tier's start-up time, for the default lead time; nil or a missing tier
	// takes scale.DefaultStartup.
	Startup map[v1alpha1.Tier]time.Duration
	// Measured, when set, holds the start-ups measured on this host; a tier measured at
	// least once takes their median instead of Startup's.
	Measured *StartupTimes
	// Interval is the time between two decisions (DefaultScalerInterval).
	Interval time.Duration
	// Window is how far back demand is averaged (DefaultDemandWindow).
	Window time.Duration
	// ObserveScaling, when set, is told of every change of a replica count: direction is
	// "out" (more replicas) or "in" (fewer).
	ObserveScaling func(workload, direction string)
}

// Scaler decides the replica count of workloads with spec.scaling, every Interval: it runs
// the scaling loop (internal/scaler) over the workloads in the store.
type Scaler struct {
	o    ScalerOptions
	log  *slog.Logger
	loop *scaler.Loop[*v1alpha1.Workload]
}

// NewScaler returns a scaler.
func NewScaler(o ScalerOptions) *Scaler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = DefaultScalerInterval
	}
	if o.Window <= 0 {
		o.Window = DefaultDemandWindow
	}
	s := &Scaler{o: o, log: o.Logger}
	s.loop = scaler.New[*v1alpha1.Workload](&storeHost{s: s}, scaler.Options{Interval: o.Interval, Clock: o.Clock})
	return s
}

// Run decides every Interval until ctx ends.
func (s *Scaler) Run(ctx context.Context) error { return s.loop.Run(ctx) }

// Step makes one decision for every workload with spec.scaling, and clears status.scaling
// of workloads that no longer have it.
func (s *Scaler) Step(ctx context.Context) error { return s.loop.Step(ctx) }

// storeHost is the scaling loop's host on this host: workloads in the store, demand from
// the usage history, and the host's capacity.
type storeHost struct {
	s *Scaler
	// all are the round's workloads, for the host's capacity.
	all []*v1alpha1.Workload
}

var _ scaler.Host[*v1alpha1.Workload] = (*storeHost)(nil)

// Round lists every workload: those with spec.scaling are decided, those without have
// their status.scaling cleared, those being deleted are left alone.
func (h *storeHost) Round(ctx context.Context) (scaler.Round[*v1alpha1.Workload], error) {
	var r scaler.Round[*v1alpha1.Workload]
	recs, _, err := h.s.o.Store.List(ctx, v1alpha1.KindWorkload)
	if err != nil {
		return r, fmt.Errorf("list workloads: %w", err)
	}
	h.all = nil
	for _, rec := range recs {
		w, err := objects.Workload(rec)
		if err != nil {
			h.s.log.Warn("scaler: workload not readable", "workload", rec.Name, "err", err)
			continue
		}
		h.all = append(h.all, w)
	}
	for _, w := range h.all {
		sw := scaler.Workload[*v1alpha1.Workload]{Key: w.Metadata.Name, Object: w}
		if w.Status != nil {
			sw.Scaling = w.Status.Scaling
		}
		_, deleting := w.Metadata.Annotations[v1alpha1.AnnotationDeletionRequested]
		switch {
		case deleting:
			sw.Action = scaler.Skip
		case w.Spec.Scaling == nil:
			sw.Action = scaler.Clear
		default:
			sw.Policy = scale.PolicyFor(w.Spec.Scaling)
			sw.Current = int(w.DesiredReplicas())
			sw.RequestMilli = w.Spec.Resources.CPU.MilliValue()
		}
		r.Workloads = append(r.Workloads, sw)
	}
	return r, nil
}

// Measure reads w's demand from the usage history; a workload without a cpu request is held.
func (h *storeHost) Measure(_ context.Context, sw scaler.Workload[*v1alpha1.Workload], now time.Time) (scaler.Inputs, error) {
	s, w, p := h.s, sw.Object, sw.Policy
	if sw.RequestMilli <= 0 {
		return scaler.Inputs{}, &scaler.Hold{Reason: "CannotScale", Message: "spec.scaling is set but resources.cpu is not: utilization is CPU usage over " +
			"the per-replica cpu request, so nothing can be scaled; set resources.cpu (such as 500m), or remove spec.scaling"}
	}
	usage := s.o.Usage.Workload(sw.Key, "")
	var in scaler.Inputs
	in.Demand, in.Measured = s.demand(w, usage, now)
	if p.Predictive {
		in.Lead, in.LeadNote = s.lead(w, p), s.leadNote(w, p)
		in.Series, in.Step = scale.DemandSeries(usage)
	}
	all := h.all
	in.Fit = func() (int, string) { return s.fit(w, all) }
	return in, nil
}

// Write sets status.scaling in the store.
func (h *storeHost) Write(ctx context.Context, sw scaler.Workload[*v1alpha1.Workload], sc *v1alpha1.ScalingStatus) error {
	return h.s.writeScaling(ctx, sw.Key, sc)
}

// Warn records a Warning event.
func (h *storeHost) Warn(ctx context.Context, sw scaler.Workload[*v1alpha1.Workload], hold *scaler.Hold) {
	h.s.event(ctx, sw.Key, "Warning", hold.Reason, hold.Message)
}

// Scaled logs the decision, records a Scaled event and tells ObserveScaling.
func (h *storeHost) Scaled(ctx context.Context, sw scaler.Workload[*v1alpha1.Workload], d *v1alpha1.ScalingDecision) {
	s, name := h.s, sw.Key
	direction := "out"
	if d.To < d.From {
		direction = "in"
	}
	s.log.Info("scaled", "workload", name, "from", int(d.From), "to", int(d.To), "policy", d.Policy)
	s.event(ctx, name, "Normal", "Scaled", d.Reason)
	if s.o.ObserveScaling != nil {
		s.o.ObserveScaling(name, direction)
	}
}

// Failed logs a round that went wrong.
func (h *storeHost) Failed(_ context.Context, err error) {
	h.s.log.Warn("scaling decisions failed", "err", err)
}

// demand sums, over w's running instances that have samples in hist within the window, the
// mean CPU each used there; measured is how many instances that is.
func (s *Scaler) demand(w *v1alpha1.Workload, hist v1alpha1.UsageHistory, now time.Time) (cores float64, measured int) {
	if w.Status == nil {
		return 0, 0
	}
	since := now.Add(-s.o.Window)
	for _, in := range w.Status.Instances {
		if in.State != string(runtime.StateRunning) {
			continue
		}
		i := slices.IndexFunc(hist.Instances, func(u v1alpha1.InstanceUsage) bool { return u.Instance == in.ID })
		if i < 0 {
			continue
		}
		sum, n := 0.0, 0
		for _, pt := range hist.Instances[i].Points {
			if pt.Time.After(since) && !pt.Time.After(now) {
				sum += pt.CPUCores
				n++
			}
		}
		if n > 0 {
			cores += sum / float64(n)
			measured++
		}
	}
	return cores, measured
}

// lead is how far ahead the predictive policy provisions for w: leadSeconds, or its tier's
// start-up time plus one decision interval.
func (s *Scaler) lead(w *v1alpha1.Workload, p scale.Policy) time.Duration {
	tier := v1alpha1.TierContainer
	if w.Status != nil && w.Status.Tier.Valid() {
		tier = w.Status.Tier
	}
	startup := scale.Startup(tier, s.o.Startup)
	if d, n := s.o.Measured.Median(tier); n > 0 {
		startup = d
	}
	return p.Lead(startup, s.o.Interval)
}

// leadNote says where the lead time came from, for the decision's reason.
func (s *Scaler) leadNote(w *v1alpha1.Workload, p scale.Policy) string {
	if p.LeadSeconds > 0 {
		return fmt.Sprintf("lead %ds from spec.scaling.leadSeconds", p.LeadSeconds)
	}
	tier := v1alpha1.TierContainer
	if w.Status != nil && w.Status.Tier.Valid() {
		tier = w.Status.Tier
	}
	if d, n := s.o.Measured.Median(tier); n > 0 {
		return fmt.Sprintf("lead = %s start-up (median of the last %d %s starts on this host) + %s interval",
			d.Round(10*time.Millisecond), n, tier, s.o.Interval)
	}
	return fmt.Sprintf("lead = %s start-up (no %s start measured on this host yet: the benchmarked default) + %s interval",
		scale.Startup(tier, s.o.Startup), tier, s.o.Interval)
}

// fit is the most replicas of w the host can hold beside every other workload's requests,
// and a note saying so.
func (s *Scaler) fit(w *v1alpha1.Workload, all []*v1alpha1.Workload) (int, string) {
	var cpu, mem int64
	for _, o := range all {
		if o.Metadata.Name == w.Metadata.Name {
			continue
		}
		n := int64(o.DesiredReplicas())
		cpu += n * o.Spec.Resources.CPU.MilliValue()
		mem += n * o.Spec.Resources.Memory.Value()
	}
	fit, msg := math.MaxInt, ""
	if c, r := s.o.Capacity.CPUMilli, w.Spec.Resources.CPU.MilliValue(); c > 0 && r > 0 {
		n := int(max(0, (c-cpu)/r))
		fit = n
		msg = fmt.Sprintf("the host's capacity holds %d (cpu: %dm of %dm requested by other workloads, %dm a replica)", n, cpu, c, r)
	}
	if c, r := s.o.Capacity.MemoryBytes, w.Spec.Resources.Memory.Value(); c > 0 && r > 0 {
		if n := int(max(0, (c-mem)/r)); n < fit {
			fit = n
			msg = fmt.Sprintf("the host's capacity holds %d (memory: %d MiB of %d MiB requested by other workloads, %d MiB a replica)",
				n, mem>>20, c>>20, r>>20)
		}
	}
	return fit, msg
}

// writeScaling sets status.scaling (nil clears it), keeping the rest of the status; it
// retries when another writer got there first.
func (s *Scaler) writeScaling(ctx context.Context, name string, sc *v1alpha1.ScalingStatus) error {
	return objects.UpdateWorkloadStatus(ctx, s.o.Store, name, func(st *v1alpha1.WorkloadStatus) { st.Scaling = sc })
}

func (s *Scaler) event(ctx context.Context, workload, typ, reason, msg string) {
	e := objects.Event{Type: typ, Reason: reason, Object: "Workload/" + workload, Message: msg}
	if s.o.Events != nil {
		s.o.Events.Record(ctx, e)
		return
	}
	s.log.Info("event", "type", typ, "reason", reason, "workload", workload, "message", msg)
}
