package scaler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/scale"
)

// DefaultInterval is the time between two rounds of decisions.
const DefaultInterval = 15 * time.Second

// Action is what a round does with a workload.
type Action int

const (
	// Decide decides the workload's count.
	Decide Action = iota
	// Skip leaves the workload alone this round (it is being deleted, or cannot be decided
	// and says so elsewhere); the loop keeps what it remembers of it.
	Skip
	// Clear is for a workload that is not scaled (any more): the loop forgets it, and clears
	// its status.scaling when it has one.
	Clear
)

// Workload is one workload of a round, as its host lists it. W is the host's own handle on
// it, which the loop hands back to the host untouched.
type Workload[W any] struct {
	// Key names the workload across rounds: its name, or namespace/name in a cluster. Error
	// messages name the workload by it.
	Key    string
	Action Action
	Object W
	// Scaling is the workload's status.scaling; nil when it has none.
	Scaling *v1alpha1.ScalingStatus

	// The rest is read for Decide only.

	// Policy is spec.scaling in plain numbers.
	Policy scale.Policy
	// Current is the count the decision starts from: the replicas the daemon runs, or the
	// floor set last.
	Current int
	// Floor decides a floor under a reactive scaler that runs elsewhere (see scale.Decide).
	Floor bool
	// RequestMilli is one replica's CPU request, in millicores.
	RequestMilli int64
}

// Inputs are what a host measured of a workload for one decision.
type Inputs struct {
	// Demand is the CPU, in cores, the measured replicas used; Measured is how many replicas
	// that is (0: no usage known yet, and nothing is decided).
	Demand   float64
	Measured int
	// Series is the total demand per sample, Step apart, oldest first; Lead is how far ahead
	// to provision, and LeadNote says where it came from, for the reason of a decision that
	// used a forecast. Predictive policies only read them.
	Series   []float64
	Step     time.Duration
	Lead     time.Duration
	LeadNote string
	// Fit, when set, tells the most replicas the host can hold, and a note saying so; it is
	// asked only when a decision adds replicas, which then stop there. Nil: no limit.
	Fit func() (int, string)
}

// Hold is the error a Host's Measure returns for a workload it cannot decide for now: the
// loop leaves the count as it is, and gives Reason and Message to the host's Warn once,
// until a decision on the workload goes through again.
type Hold struct {
	Reason, Message string
}

func (h *Hold) Error() string { return h.Reason + ": " + h.Message }

// Host is where the workloads live. A Loop calls its host from one goroutine, one round at a
// time: Round first, then the other methods for that round's workloads, so a host may keep
// what it read for a round until the next call of Round.
type Host[W any] interface {
	// Round lists the workloads of one round, in the order the loop handles them.
	Round(ctx context.Context) (Round[W], error)
	// Measure tells what a decision on w at now is made of. An error that is a *Hold holds
	// w; any other fails w's decision.
	Measure(ctx context.Context, w Workload[W], now time.Time) (Inputs, error)
	// Write sets w's status.scaling to sc (nil clears it), keeping the rest of its status.
	Write(ctx context.Context, w Workload[W], sc *v1alpha1.ScalingStatus) error
	// Warn tells that w is held, and why.
	Warn(ctx context.Context, w Workload[W], h *Hold)
	// Scaled tells of a decision that changed w's count, once it is written.
	Scaled(ctx context.Context, w Workload[W], d *v1alpha1.ScalingDecision)
	// Failed tells of a round that went wrong, when Run runs the rounds; the loop goes on.
	Failed(ctx context.Context, err error)
}

// Round is what a host lists for one round.
type Round[W any] struct {
	Workloads []Workload[W]
	// Err, when set, is asked once the round's decisions are made, for what else went wrong
	// in the round (the decisions went on without it); Step reports it after theirs.
	Err func() error
}

// Options configure a Loop.
type Options struct {
	// Interval is the time between two rounds (DefaultInterval).
	Interval time.Duration
	// Clock is the time of decisions and stabilization windows (time.Now).
	Clock func() time.Time
}

// Loop decides, every interval, the count of the workloads its host lists.
type Loop[W any] struct {
	host Host[W]
	o    Options

	mu    sync.Mutex
	state map[string]*state // by Workload.Key
}

// state is what the loop remembers of one workload between rounds.
type state struct {
	hpa *scale.HPA
	// warned: the workload is held, and the host's Warn said so.
	warned bool
}

// New returns a loop over host's workloads.
func New[W any](host Host[W], o Options) *Loop[W] {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return &Loop[W]{host: host, o: o, state: map[string]*state{}}
}

// Run makes a round every Interval until ctx ends; a round that fails goes to the host's
// Failed.
func (l *Loop[W]) Run(ctx context.Context) error {
	t := time.NewTicker(l.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := l.Step(ctx); err != nil {
				l.host.Failed(ctx, err)
			}
		}
	}
}

// Step makes one round: it decides every workload the host lists with Decide, clears the
// status.scaling of those listed with Clear, and forgets every workload that was not listed
// or was listed with Clear.
func (l *Loop[W]) Step(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, err := l.host.Round(ctx)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var errs []error
	for _, w := range r.Workloads {
		switch w.Action {
		case Skip:
			seen[w.Key] = true
		case Clear:
			if w.Scaling != nil {
				errs = append(errs, l.host.Write(ctx, w, nil))
			}
		case Decide:
			seen[w.Key] = true
			if err := l.decide(ctx, w); err != nil {
				errs = append(errs, fmt.Errorf("workload %s: %w", w.Key, err))
			}
		}
	}
	for key := range l.state {
		if !seen[key] {
			delete(l.state, key)
		}
	}
	if r.Err != nil {
		errs = append(errs, r.Err())
	}
	return errors.Join(errs...)
}

// decide makes one decision for w.
func (l *Loop[W]) decide(ctx context.Context, w Workload[W]) error {
	st := l.state[w.Key]
	if st == nil {
		st = &state{}
		l.state[w.Key] = st
	}
	now := l.o.Clock()
	in, err := l.host.Measure(ctx, w, now)
	if h, ok := errors.AsType[*Hold](err); ok {
		if !st.warned {
			st.warned = true
			l.host.Warn(ctx, w, h)
		}
		return nil
	}
	if err != nil {
		return err
	}
	st.warned = false

	p := w.Policy
	if st.hpa == nil {
		st.hpa = scale.NewHPA(p.Min, p.Max, 0)
		if w.Scaling != nil && w.Scaling.LastDecision != nil {
			// A restarted daemon (or a newly elected operator) keeps the cooldown of the
			// last decision.
			ld := w.Scaling.LastDecision
			st.hpa.ScaleTo(ld.Time, int(ld.From), int(ld.To))
		}
	}
	st.hpa.Min, st.hpa.Max, st.hpa.Target = p.Min, p.Max, float64(p.TargetCPUPercent)/100
	st.hpa.ScaleDownWindow = time.Duration(p.ScaleInCooldownSeconds) * time.Second

	d := scale.Decide(scale.DecisionInput{
		Policy: p, Current: w.Current, RequestMilli: w.RequestMilli, Now: now, Floor: w.Floor,
		Demand: in.Demand, Measured: in.Measured, Series: in.Series, Step: in.Step, Lead: in.Lead,
	}, st.hpa)
	if d.Forecast {
		d.Notes = append(d.Notes, in.LeadNote)
	}
	if d.To > w.Current && in.Fit != nil {
		if fit, note := in.Fit(); d.To > fit {
			d.To = max(w.Current, fit)
			d.Notes = append(d.Notes, note)
		}
	}

	if d.To == w.Current {
		if w.Scaling != nil && int(w.Scaling.Replicas) == w.Current {
			return nil
		}
		// The first decision (or new bounds) states the count the host applies.
		sc := &v1alpha1.ScalingStatus{Replicas: int32(w.Current)}
		if w.Scaling != nil {
			sc.LastDecision = w.Scaling.LastDecision
		}
		return l.host.Write(ctx, w, sc)
	}
	rec := d.Record(w.Current, now, in.Demand)
	if err := l.host.Write(ctx, w, &v1alpha1.ScalingStatus{Replicas: int32(d.To), LastDecision: rec}); err != nil {
		return err
	}
	l.host.Scaled(ctx, w, rec)
	return nil
}
