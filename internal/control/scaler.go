package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/scale"
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
// The decision itself is scale.Decide, which the operator's predictive scaler calls too. A
// decision is written to status.scaling, never to spec.replicas (the user's); the workload
// controller runs status.scaling.replicas instances when spec.scaling is set.

// Defaults of ScalerOptions.
const (
	DefaultScalerInterval = 15 * time.Second
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

// Scaler decides the replica count of workloads with spec.scaling, every Interval.
type Scaler struct {
	o     ScalerOptions
	log   *slog.Logger
	state map[string]*scalerState // by workload
}

// scalerState is what the scaler remembers of one workload between decisions.
type scalerState struct {
	hpa *scale.HPA
	// warned: the workload has no cpu request, and a Warning event said so.
	warned bool
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
	return &Scaler{o: o, log: o.Logger, state: map[string]*scalerState{}}
}

// Run decides every Interval until ctx ends.
func (s *Scaler) Run(ctx context.Context) error {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.Step(ctx); err != nil {
				s.log.Warn("scaling decisions failed", "err", err)
			}
		}
	}
}

// Step makes one decision for every workload with spec.scaling, and clears status.scaling
// of workloads that no longer have it.
func (s *Scaler) Step(ctx context.Context) error {
	recs, _, err := s.o.Store.List(ctx, v1alpha1.KindWorkload)
	if err != nil {
		return fmt.Errorf("list workloads: %w", err)
	}
	var all []*v1alpha1.Workload
	for _, rec := range recs {
		w, err := objects.Workload(rec)
		if err != nil {
			s.log.Warn("scaler: workload not readable", "workload", rec.Name, "err", err)
			continue
		}
		all = append(all, w)
	}
	seen := map[string]bool{}
	var errs []error
	for _, w := range all {
		name := w.Metadata.Name
		seen[name] = true
		if _, deleting := w.Metadata.Annotations[v1alpha1.AnnotationDeletionRequested]; deleting {
			continue
		}
		if w.Spec.Scaling == nil {
			delete(s.state, name)
			if w.Status != nil && w.Status.Scaling != nil {
				errs = append(errs, s.writeScaling(ctx, name, nil))
			}
			continue
		}
		if err := s.decide(ctx, w, all); err != nil {
			errs = append(errs, fmt.Errorf("workload %s: %w", name, err))
		}
	}
	for name := range s.state {
		if !seen[name] {
			delete(s.state, name)
		}
	}
	return errors.Join(errs...)
}

// decide makes one decision for w; all are every workload, for the host's capacity.
func (s *Scaler) decide(ctx context.Context, w *v1alpha1.Workload, all []*v1alpha1.Workload) error {
	name := w.Metadata.Name
	st := s.state[name]
	if st == nil {
		st = &scalerState{}
		s.state[name] = st
	}
	request := w.Spec.Resources.CPU.MilliValue()
	if request <= 0 {
		if !st.warned {
			st.warned = true
			s.event(ctx, name, "Warning", "CannotScale", "spec.scaling is set but resources.cpu is not: utilization is CPU usage over "+
				"the per-replica cpu request, so nothing can be scaled; set resources.cpu (such as 500m), or remove spec.scaling")
		}
		return nil
	}
	st.warned = false
	p := scale.PolicyFor(w.Spec.Scaling)
	now := s.o.Clock()
	current := int(w.DesiredReplicas())
	if st.hpa == nil {
		st.hpa = scale.NewHPA(p.Min, p.Max, 0)
		if w.Status != nil && w.Status.Scaling != nil && w.Status.Scaling.LastDecision != nil {
			// A restarted daemon keeps the cooldown of the last scale-out.
			ld := w.Status.Scaling.LastDecision
			st.hpa.ScaleTo(ld.Time, int(ld.From), int(ld.To))
		}
	}
	st.hpa.Min, st.hpa.Max, st.hpa.Target = p.Min, p.Max, float64(p.TargetCPUPercent)/100
	st.hpa.ScaleDownWindow = time.Duration(p.ScaleInCooldownSeconds) * time.Second

	usage := s.o.Usage.Workload(name, "")
	in := scale.DecisionInput{Policy: p, Current: current, RequestMilli: request, Now: now}
	in.Demand, in.Measured = s.demand(w, usage, now)
	if p.Predictive {
		in.Lead = s.lead(w, p)
		in.Series, in.Step = scale.DemandSeries(usage)
	}
	d := scale.Decide(in, st.hpa)
	if d.Forecast {
		d.Notes = append(d.Notes, s.leadNote(w, p))
	}
	if d.To > current {
		if fit, msg := s.fit(w, all); d.To > fit {
			d.To = max(current, fit)
			d.Notes = append(d.Notes, msg)
		}
	}

	pinned := w.Status != nil && w.Status.Scaling != nil && int(w.Status.Scaling.Replicas) == current
	if d.To == current {
		if pinned {
			return nil
		}
		// The first evaluation (or new bounds) fixes the count the controller runs.
		sc := &v1alpha1.ScalingStatus{Replicas: int32(current)}
		if w.Status != nil && w.Status.Scaling != nil {
			sc.LastDecision = w.Status.Scaling.LastDecision
		}
		return s.writeScaling(ctx, name, sc)
	}
	decision := d.Record(current, now, in.Demand)
	reason := decision.Reason
	if err := s.writeScaling(ctx, name, &v1alpha1.ScalingStatus{Replicas: int32(d.To), LastDecision: decision}); err != nil {
		return err
	}
	direction := "out"
	if d.To < current {
		direction = "in"
	}
	s.log.Info("scaled", "workload", name, "from", current, "to", d.To, "policy", d.Policy)
	s.event(ctx, name, "Normal", "Scaled", reason)
	if s.o.ObserveScaling != nil {
		s.o.ObserveScaling(name, direction)
	}
	return nil
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
