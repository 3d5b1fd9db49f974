package scale

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

// Start-up figures measured on strata's reference host class (2 cores, no KVM, QEMU under TCG;
// docs/benchmarks.md): apply -> Running of a container took 222 ms, of a gVisor sandbox through
// containerd about 853 ms, and an image VM took 3.15 s from start to its first HTTP byte. A new
// replica serves only once its readiness probe passes, which at the default probe interval
// adds about 10 s to every tier.
const (
	MeasuredContainerStart = 222 * time.Millisecond
	MeasuredSandboxStart   = 853 * time.Millisecond
	MeasuredVMStart        = 3150 * time.Millisecond
	ReadinessDelay         = 10 * time.Second

	// DefaultDecisionInterval is how often a policy decides (the HPA's sync period, roughly).
	DefaultDecisionInterval = 10 * time.Second
	// DefaultHeadroomQuantile: the predictive policy adds the forecast's relative error that
	// this share of the last day's one-step errors stayed below.
	DefaultHeadroomQuantile = 0.9
)

// DefaultStartup is each tier's start-up time: the measured start plus the readiness delay.
func DefaultStartup() map[v1alpha1.Tier]time.Duration {
	return map[v1alpha1.Tier]time.Duration{
		v1alpha1.TierContainer: MeasuredContainerStart + ReadinessDelay,
		v1alpha1.TierSandbox:   MeasuredSandboxStart + ReadinessDelay,
		v1alpha1.TierVM:        MeasuredVMStart + ReadinessDelay,
	}
}

// Names of the simulated policies.
const (
	Reactive   = "reactive"
	Predictive = "predictive"
	Oracle     = "oracle"
)

// SimInput is what Simulate replays.
type SimInput struct {
	Trace  *Trace
	Policy Policy
	// ReplicaCPU is one replica's CPU request (resources.cpu), in cores.
	ReplicaCPU float64
	Tier       v1alpha1.Tier
	// Startup is each tier's start-up time; nil or a missing tier takes DefaultStartup.
	Startup map[v1alpha1.Tier]time.Duration
	// DecisionInterval: 0 means DefaultDecisionInterval.
	DecisionInterval time.Duration
	// HeadroomQuantile: 0 means DefaultHeadroomQuantile.
	HeadroomQuantile float64
	// Candidates are the forecasting models the predictive policy selects from each day;
	// nil means Candidates(). The naive forecast (the last value) is always a candidate.
	Candidates func() []Forecaster
}

// Result is one policy's replay.
type Result struct {
	Name string `json:"name"`
	// SlackPercent is the ready capacity demand did not need, over the whole trace, in percent
	// of the ready capacity.
	SlackPercent float64 `json:"slackPercent"`
	// ShortagePercent is the share of time, in percent, in which demand exceeded the ready
	// capacity.
	ShortagePercent float64 `json:"shortagePercent"`
	// ReplicaHours counts every running replica, ready or starting.
	ReplicaHours float64 `json:"replicaHours"`
	// Model is the forecasting model the predictive policy used most.
	Model string `json:"model,omitempty"`
	// Capacity is the mean ready capacity of each interval, in cores.
	Capacity []float64 `json:"-"`
	// Short is the share of each interval in shortage.
	Short []float64 `json:"-"`
}

// Report is the outcome of Simulate.
type Report struct {
	Policies []Result
	// PerReplica is one replica's capacity in cores: the CPU request at the target utilization.
	PerReplica float64
	Startup    time.Duration
	Lead       time.Duration
}

// Simulate replays the trace through the reactive, predictive and oracle policies.
//
// The simulator steps at the trace's resolution; demand is constant within an interval.
// Within an interval it keeps exact time: a decision is made one decision interval d into
// the interval (when the new level has been measured), a replica ordered at time t serves
// from t + start-up, and capacity and shortage are summed over the parts of the interval
// between such events. So a start-up of 10 s costs a reactive policy 20 s of a 5-minute
// interval (d + start-up), not the whole interval.
//
//   - reactive: the HPA (Desired, stabilization, clamp) on the utilization of the current
//     replicas, replicas still starting counting as idle (as the HPA counts them).
//   - predictive: at d into each interval, it first makes up any shortfall against the
//     measured demand at once, then forecasts the next intervals up to now+lead, adds
//     headroom (a quantile of its recent relative errors), and orders what that needs at the
//     last moment that has them ready in time: lead before the next interval. It scales in
//     at the next interval's start, never while the forecast rises and never within the
//     scale-in cooldown of a scale-out. Each day it selects a model on the history so far.
//   - oracle: knows the trace; exactly ceil(demand/per-replica capacity) replicas are ready
//     in every interval, each started one start-up time early (and kept, rather than
//     stopped and started again, when it is needed again within a start-up time).
//
// All policies start with the first interval's need ready.
func Simulate(in SimInput) (*Report, error) {
	cfg, err := newSimConfig(in)
	if err != nil {
		return nil, err
	}
	rep := &Report{PerReplica: cfg.per, Startup: cfg.startupDur, Lead: cfg.leadDur}
	reactive := cfg.account(Reactive, cfg.reactive())
	fl, model := cfg.predictive()
	predictive := cfg.account(Predictive, fl)
	predictive.Model = model
	oracle := cfg.account(Oracle, cfg.oracle())
	rep.Policies = []Result{reactive, predictive, oracle}
	return rep, nil
}

type simConfig struct {
	in         SimInput
	demand     []float64
	step       float64 // seconds
	per        float64 // cores per replica
	startup    float64
	decision   float64
	lead       float64
	startupDur time.Duration
	leadDur    time.Duration
	quantile   float64
}

func newSimConfig(in SimInput) (*simConfig, error) {
	tr := in.Trace
	switch {
	case tr == nil || len(tr.CPU) == 0:
		return nil, errors.New("the trace is empty")
	case tr.Step <= 0:
		return nil, fmt.Errorf("trace step %v: must be positive", tr.Step)
	case !(in.ReplicaCPU > 0):
		return nil, fmt.Errorf("replica CPU %v: must be positive", in.ReplicaCPU)
	case in.Policy.TargetCPUPercent < 1 || in.Policy.TargetCPUPercent > 100:
		return nil, fmt.Errorf("target CPU %d%%: must be between 1 and 100", in.Policy.TargetCPUPercent)
	case in.Policy.Min < 1 || in.Policy.Max < in.Policy.Min:
		return nil, fmt.Errorf("replicas min %d max %d: need 1 <= min <= max", in.Policy.Min, in.Policy.Max)
	}
	startup, ok := in.Startup[in.Tier]
	if !ok {
		startup, ok = DefaultStartup()[in.Tier]
		if !ok {
			return nil, fmt.Errorf("unknown tier %q: use container, sandbox or vm", in.Tier)
		}
	}
	d := in.DecisionInterval
	if d <= 0 {
		d = DefaultDecisionInterval
	}
	q := in.HeadroomQuantile
	if q <= 0 {
		q = DefaultHeadroomQuantile
	}
	lead := in.Policy.Lead(startup, d)
	return &simConfig{
		in:         in,
		demand:     tr.CPU,
		step:       tr.Step.Seconds(),
		per:        in.ReplicaCPU * in.Policy.target(),
		startup:    startup.Seconds(),
		decision:   min(d.Seconds(), tr.Step.Seconds()),
		lead:       lead.Seconds(),
		startupDur: startup,
		leadDur:    lead,
		quantile:   min(q, 1),
	}, nil
}

// need is how many replicas serve demand, within the policy's bounds.
func (c *simConfig) need(demand float64) int {
	return clamp(ceil(demand/c.per), c.in.Policy.Min, c.in.Policy.Max)
}

func (c *simConfig) at(i int) float64 { return float64(i) * c.step }

func (c *simConfig) clock(sec float64) time.Time {
	return c.in.Trace.Start.Add(time.Duration(sec * float64(time.Second)))
}

func (c *simConfig) newFleet() *fleet {
	n := c.need(c.demand[0])
	f := &fleet{startup: c.startup, ready: n}
	f.mark(0)
	return f
}

func (c *simConfig) reactive() *fleet {
	f := c.newFleet()
	p := c.in.Policy
	hpa := NewHPA(p.Min, p.Max, p.target())
	for i, d := range c.demand {
		now := c.at(i) + c.decision
		f.advance(now)
		total := f.total()
		util := d / (float64(total) * c.in.ReplicaCPU)
		f.scaleTo(now, hpa.Scale(c.clock(now), total, util))
	}
	f.advance(c.at(len(c.demand)))
	return f
}

// predictive replays the predictive policy; it returns the fleet and the model it used most.
func (c *simConfig) predictive() (*fleet, string) {
	f := c.newFleet()
	p := c.in.Policy
	perDay := max(1, int(Day.Seconds()/c.step))
	horizon := max(1, int(math.Ceil((c.lead+c.decision)/c.step)))
	cooldown := float64(p.ScaleInCooldownSeconds)
	candidates := c.in.Candidates
	if candidates == nil {
		candidates = Candidates
	}
	var (
		model    Forecaster
		expected = math.NaN() // the forecast of the current interval
		errs     []float64    // relative one-step errors, the last day's
		lastOut  = math.Inf(-1)
		used     = map[string]int{}
	)
	for i, d := range c.demand {
		now := c.at(i) + c.decision
		f.advance(now)
		if !math.IsNaN(expected) {
			errs = append(errs, (d-expected)/math.Max(expected, c.per))
			if len(errs) > perDay {
				errs = errs[1:]
			}
		}
		// Make up a shortfall against measured demand at once.
		if floor := c.need(d); f.total() < floor {
			f.scaleTo(now, floor)
			lastOut = now
		}
		// Learn: choose a model each day, observe every point.
		hist := c.demand[:i+1]
		if model == nil || (i%perDay == 0 && i > 0) {
			model = c.choose(hist, perDay, candidates)
		} else {
			model.Observe(d)
		}
		used[model.Name()]++
		fc := model.Predict(horizon)
		peak := slices.Max(fc)
		want := c.need(peak * (1 + max(0, quantile(errs, c.quantile))))
		rising := fc[len(fc)-1] > expected
		expected = fc[0]

		next := c.at(i + 1)
		switch total := f.total(); {
		case i+1 == len(c.demand): // the trace ends: nothing to provision for
		case want > total:
			order := max(now, next-c.lead)
			f.scaleTo(order, want)
			lastOut = order
		case want < total && !rising && next-lastOut >= cooldown:
			f.scaleTo(next, want)
		}
	}
	f.advance(c.at(len(c.demand)))
	best, n := "", 0
	for name, k := range used {
		if k > n || (k == n && name < best) {
			best, n = name, k
		}
	}
	return f, best
}

// choose selects a forecasting model on hist, holding out its last day (or a quarter of it
// when it is shorter than four days).
func (c *simConfig) choose(hist []float64, perDay int, candidates func() []Forecaster) Forecaster {
	naive := &SeasonalNaive{Season: c.in.Trace.Step}
	if len(hist) < 8 {
		_ = naive.Fit(hist, c.in.Trace.Step) // one point is enough for the naive forecast
		return naive
	}
	holdout := min(perDay, len(hist)/4)
	sel, err := Select(hist, c.in.Trace.Step, append([]Forecaster{naive}, candidates()...), holdout)
	if err != nil { // the naive forecast fits any series of two points or more
		_ = naive.Fit(hist, c.in.Trace.Step)
		return naive
	}
	return sel.Best
}

// quantile is the q-quantile of xs (nearest rank), 0 for none.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[clamp(i, 0, len(s)-1)]
}

func (c *simConfig) oracle() *fleet {
	f := c.newFleet()
	n := len(c.demand)
	needs := make([]int, n)
	for i, d := range c.demand {
		needs[i] = c.need(d)
	}
	// The running count at t is the largest need in [t, t+startup]: it changes only at
	// interval starts and one start-up time before them.
	var events []float64
	for k := 1; k < n; k++ {
		if t := c.at(k) - c.startup; t > 0 {
			events = append(events, t)
		}
		events = append(events, c.at(k))
	}
	slices.Sort(events)
	for _, t := range events {
		first := min(n-1, int(t/c.step))
		last := min(n-1, int((t+c.startup)/c.step))
		f.scaleTo(t, slices.Max(needs[first:last+1]))
	}
	f.advance(c.at(n))
	return f
}

// account sums a fleet's timeline against demand.
func (c *simConfig) account(name string, f *fleet) Result {
	n := len(c.demand)
	res := Result{Name: name, Capacity: make([]float64, n), Short: make([]float64, n)}
	var capSum, slackSum, shortSum, runSum float64
	p := 0 // the point in force
	for i, d := range c.demand {
		a, end := c.at(i), c.at(i+1)
		for a < end {
			for p+1 < len(f.points) && f.points[p+1].at <= a {
				p++
			}
			b := end
			if p+1 < len(f.points) && f.points[p+1].at < end {
				b = f.points[p+1].at
			}
			dt := b - a
			capacity := float64(f.points[p].ready) * c.per
			capSum += capacity * dt
			slackSum += math.Max(capacity-d, 0) * dt
			if d > capacity+1e-9 {
				shortSum += dt
				res.Short[i] += dt / c.step
			}
			runSum += float64(f.points[p].running) * dt
			res.Capacity[i] += capacity * dt / c.step
			a = b
		}
	}
	if capSum > 0 {
		res.SlackPercent = 100 * slackSum / capSum
	}
	res.ShortagePercent = 100 * shortSum / (float64(n) * c.step)
	res.ReplicaHours = runSum / 3600
	return res
}

// fleet is the replicas of one policy over time, in seconds from the trace's start.
type fleet struct {
	startup  float64
	ready    int
	starting []float64 // when each starting replica becomes ready, ascending
	points   []point   // the timeline: every change of ready or running replicas
}

type point struct {
	at             float64
	ready, running int
}

func (f *fleet) total() int { return f.ready + len(f.starting) }

// mark records the state at t; a later change at the same time replaces it.
func (f *fleet) mark(t float64) {
	pt := point{at: t, ready: f.ready, running: f.total()}
	if k := len(f.points); k > 0 && f.points[k-1].at == t {
		f.points[k-1] = pt
		return
	}
	f.points = append(f.points, pt)
}

// advance makes ready the replicas whose start-up ends by t.
func (f *fleet) advance(t float64) {
	for len(f.starting) > 0 && f.starting[0] <= t {
		at := f.starting[0]
		f.starting = f.starting[1:]
		f.ready++
		f.mark(at)
	}
}

// scaleTo sets the number of running replicas at t: new ones start (ready after the
// start-up time); surplus ones stop, those still starting first.
func (f *fleet) scaleTo(t float64, n int) {
	f.advance(t)
	total := f.total()
	switch {
	case n > total:
		for range n - total {
			f.starting = append(f.starting, t+f.startup)
		}
	case n < total:
		drop := total - n
		cancel := min(drop, len(f.starting))
		f.starting = f.starting[:len(f.starting)-cancel]
		f.ready -= drop - cancel
	default:
		return
	}
	f.mark(t)
}
