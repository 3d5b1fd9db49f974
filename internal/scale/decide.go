package scale

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

// ForecastPoints is the fewest demand samples a forecast is fitted on; with fewer, a
// predictive decision is reactive only, and says so.
const ForecastPoints = 8

// riseTolerance: a forecast rises when its value at the lead time is more than this share
// above its next value (smaller changes are noise).
const riseTolerance = 0.05

// DecisionInput is what one scaling decision is made from. The daemon's scaler and the
// operator's predictive scaler fill it from their own measurements and call Decide.
type DecisionInput struct {
	Policy Policy
	// Current is the replica count now; in floor mode, the floor now.
	Current int
	// RequestMilli is one replica's CPU request, in millicores.
	RequestMilli int64
	// Now is the time of the decision, for the stabilization windows.
	Now time.Time
	// Demand is the CPU the measured replicas used, in cores; Measured is how many replicas
	// that is (0: no usage known yet, and nothing is decided).
	Demand   float64
	Measured int
	// Series is the workload's total demand per sample, Step apart, oldest first; Lead is how
	// far ahead to provision. Both are read by predictive policies only.
	Series []float64
	Step   time.Duration
	Lead   time.Duration
	// Floor decides only the predictive part, for a reactive scaler that runs elsewhere (in
	// a cluster, the HorizontalPodAutoscaler): the decision is the floor under that scaler
	// (its minReplicas), the count the forecast needs, or Policy.Min when the forecast needs
	// no more. Current is the floor now. The floor is not lowered while the forecast rises,
	// nor without a forecast, and, through the HPA's scale-down window, not within the
	// scale-in cooldown of the highest floor recommended.
	Floor bool
}

// Decision is the count Decide chose and what it was chosen from; Reason puts it in words.
type Decision struct {
	// To is the replica count decided (in floor mode, the floor).
	To int
	// Policy is what drove the count: the reactive formula or the forecast.
	Policy v1alpha1.ScalingPolicy
	// Measured tells whether usage was known; PerReplica is then the measured cores per
	// replica, PerTarget the cores a replica serves at the target.
	Measured              bool
	PerReplica, PerTarget float64
	// TargetPercent and RequestMilli are the policy's target and the per-replica request.
	TargetPercent int
	RequestMilli  int64
	// Forecast tells whether a forecast was made; ForecastCores is then its peak over Lead.
	Forecast      bool
	ForecastCores float64
	Lead          time.Duration
	// Notes say what bounded or changed the count, in the order they applied; a caller may
	// add its own (the daemon adds the host's capacity).
	Notes []string
	floor bool
}

// Decide makes one scaling decision: the reactive recommendation (the HPA formula on the
// measured utilization), the predictive one when the policy asks for it, then the HPA's
// stabilization and clamp (hpa keeps the recommendations of its windows between calls; the
// caller sets its Min, Max, Target and ScaleDownWindow from the policy). In floor mode
// (DecisionInput.Floor) the reactive recommendation is left to the scaler that runs
// elsewhere, and only the forecast's floor is decided.
func Decide(in DecisionInput, hpa *HPA) Decision {
	p := in.Policy
	target := float64(p.TargetCPUPercent) / 100
	cores := float64(in.RequestMilli) / 1000
	d := Decision{To: in.Current, Policy: v1alpha1.ScalingReactive, TargetPercent: p.TargetCPUPercent, RequestMilli: in.RequestMilli,
		PerTarget: cores * target, Lead: in.Lead, floor: in.Floor}
	if in.Measured == 0 {
		return d // no usage known yet: nothing to decide on
	}
	d.Measured = true
	d.PerReplica = in.Demand / float64(in.Measured)
	raw := p.Min
	if !in.Floor {
		raw = Desired(in.Current, d.PerReplica/cores, target, hpa.Tolerance)
	}
	if p.Predictive {
		raw = d.predict(in, raw)
	}
	d.To = hpa.ScaleTo(in.Now, in.Current, raw)
	switch {
	case d.To < raw && d.To == p.Max:
		d.Notes = append(d.Notes, fmt.Sprintf("capped at max %d", p.Max))
	case d.To > raw && d.To == p.Min:
		d.Notes = append(d.Notes, fmt.Sprintf("held at min %d", p.Min))
	case d.To > raw && d.To < in.Current:
		d.Notes = append(d.Notes, fmt.Sprintf("held at %d, the highest count recommended within the %d s scale-in cooldown", d.To, int(hpa.ScaleDownWindow/time.Second)))
	}
	return d
}

// predict forecasts demand over the lead time and returns the count the forecast needs at
// the target when that is more than reactive, and at least the current count while the
// forecast rises.
//
// Without a forecast (too few samples, or no model fits) the decision is reactive only; in
// floor mode, where the reactive part runs elsewhere, the floor is held where it is, so that
// a restarted scaler does not drop a floor before it can forecast again.
func (d *Decision) predict(in DecisionInput, reactive int) int {
	fallback, then := reactive, "reactive only"
	if in.Floor {
		fallback, then = max(reactive, in.Current), "minReplicas held"
	}
	if len(in.Series) < ForecastPoints || in.Step <= 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("predictive: %d usage samples, a forecast needs %d: %s", len(in.Series), ForecastPoints, then))
		return fallback
	}
	fc, err := ForecastDemand(in.Series, in.Step, in.Lead)
	if err != nil {
		d.Notes = append(d.Notes, "predictive: no forecast ("+err.Error()+"): "+then)
		return fallback
	}
	peak := max(0, slices.Max(fc))
	d.Forecast, d.ForecastCores = true, peak
	raw := reactive
	if need := int(math.Ceil(peak/d.PerTarget - 1e-9)); need > raw {
		raw, d.Policy = need, v1alpha1.ScalingPredictive
	}
	if Rising(fc) && raw < in.Current {
		raw, d.Policy = in.Current, v1alpha1.ScalingPredictive
		if in.Floor {
			d.Notes = append(d.Notes, "the forecast rises: minReplicas is not lowered")
		} else {
			d.Notes = append(d.Notes, "the forecast rises: no replica is removed")
		}
	}
	return raw
}

// Rising tells whether the forecast fc rises over the lead time: its last value is more than
// 5% and more than a millicore above its first.
func Rising(fc []float64) bool {
	if len(fc) == 0 {
		return false
	}
	first, last := fc[0], fc[len(fc)-1]
	return last > first*(1+riseTolerance) && last-first > 0.001
}

// ForecastDemand selects a model by backtest on series, whose points are step apart (the
// naive forecast and Holt-Winters with short seasons, which follow a trend within the hour
// of history), and returns its forecast of every step up to lead.
func ForecastDemand(series []float64, step, lead time.Duration) ([]float64, error) {
	candidates := []Forecaster{
		&SeasonalNaive{Season: step},
		NewHoltWinters(2 * step),
		NewHoltWinters(6 * step),
	}
	sel, err := Select(series, step, candidates, max(1, len(series)/4))
	if err != nil {
		return nil, err
	}
	h := max(1, int(math.Ceil(float64(lead)/float64(step))))
	fc := sel.Best.Predict(h)
	if len(fc) == 0 {
		return nil, errors.New("the model forecast nothing")
	}
	return fc, nil
}

// DemandSeries sums the samples of h's instances taken at the same time: the workload's
// demand per sample, oldest first, and the time between samples.
func DemandSeries(h v1alpha1.UsageHistory) ([]float64, time.Duration) {
	total := map[time.Time]float64{}
	for _, in := range h.Instances {
		for _, pt := range in.Points {
			total[pt.Time] += pt.CPUCores
		}
	}
	times := make([]time.Time, 0, len(total))
	for t := range total {
		times = append(times, t)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	out := make([]float64, len(times))
	for i, t := range times {
		out[i] = total[t]
	}
	return out, time.Duration(h.IntervalSeconds) * time.Second
}

// Reason says why the count changed from current to d.To: what was measured against what
// target, the forecast, and the notes. In floor mode it names the floor minReplicas, as the
// HorizontalPodAutoscaler that runs above it does.
func (d Decision) Reason(current int) string {
	var b strings.Builder
	if d.floor {
		fmt.Fprintf(&b, "minReplicas %d -> %d", current, d.To)
	} else {
		fmt.Fprintf(&b, "scaled %d -> %d", current, d.To)
	}
	if d.Measured {
		fmt.Fprintf(&b, ": cpu %.2f cores per replica against a target of %.2f (%d%% of %dm)", d.PerReplica, d.PerTarget, d.TargetPercent, d.RequestMilli)
	}
	if d.Forecast {
		fmt.Fprintf(&b, "; predictive: forecast %.2f cores in %s", d.ForecastCores, d.Lead.Round(time.Second))
	}
	for _, n := range d.Notes {
		b.WriteString("; " + n)
	}
	return b.String()
}

// Record is the decision as status.scaling.lastDecision keeps it: made at now, from current,
// on demand cores; cores are kept to three decimals, time to the second.
func (d Decision) Record(current int, now time.Time, demand float64) *v1alpha1.ScalingDecision {
	r := &v1alpha1.ScalingDecision{
		Time: now.UTC().Truncate(time.Second), From: int32(current), To: int32(d.To), Reason: d.Reason(current),
		DemandCores: round3(demand), Policy: d.Policy,
	}
	if d.Forecast {
		r.ForecastCores, r.LeadSeconds = round3(d.ForecastCores), int32(d.Lead/time.Second)
	}
	return r
}

// round3 keeps three decimals, enough for cores in a status.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
