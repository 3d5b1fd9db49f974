package scale

import (
	"slices"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

// step is the sample interval of the decision tests' demand series.
const step = 15 * time.Second

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// ramp is n samples from start, each by more than the last.
func ramp(n int, start, by float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = start + by*float64(i)
	}
	return out
}

func flat(n int, v float64) []float64 { return ramp(n, v, 0) }

func policy(predictive bool) Policy {
	return Policy{Min: 2, Max: 8, TargetCPUPercent: 50, Predictive: predictive, LeadSeconds: 60, ScaleInCooldownSeconds: 60}
}

func hpaFor(p Policy) *HPA {
	h := NewHPA(p.Min, p.Max, float64(p.TargetCPUPercent)/100)
	h.ScaleDownWindow = time.Duration(p.ScaleInCooldownSeconds) * time.Second
	return h
}

// TestDecide: one decision each, from a fresh HPA. Replicas request 500m at a 50% target: a
// replica serves 0.25 cores.
func TestDecide(t *testing.T) {
	tests := []struct {
		name       string
		in         DecisionInput
		to         int
		policy     v1alpha1.ScalingPolicy
		reason     string   // the whole reason, when given
		mentions   []string // parts of the reason
		noForecast bool
	}{
		{
			name:   "reactive scale-out",
			in:     DecisionInput{Policy: policy(false), Current: 2, Demand: 1.0, Measured: 2},
			to:     4,
			policy: v1alpha1.ScalingReactive,
			reason: "scaled 2 -> 4: cpu 0.50 cores per replica against a target of 0.25 (50% of 500m)",
		},
		{
			name:   "within tolerance",
			in:     DecisionInput{Policy: policy(false), Current: 2, Demand: 0.52, Measured: 2},
			to:     2,
			policy: v1alpha1.ScalingReactive,
		},
		{
			name:   "no usage known",
			in:     DecisionInput{Policy: policy(true), Current: 3},
			to:     3,
			policy: v1alpha1.ScalingReactive,
			reason: "scaled 3 -> 3",
		},
		{
			name:     "capped at max",
			in:       DecisionInput{Policy: policy(false), Current: 2, Demand: 5, Measured: 2},
			to:       8,
			policy:   v1alpha1.ScalingReactive,
			mentions: []string{"; capped at max 8"},
		},
		{
			name:     "held at min",
			in:       DecisionInput{Policy: policy(false), Current: 3, Demand: 0.05, Measured: 3},
			to:       2,
			policy:   v1alpha1.ScalingReactive,
			mentions: []string{"; held at min 2"},
		},
		{
			name:     "predictive, too few samples",
			in:       DecisionInput{Policy: policy(true), Current: 2, Demand: 1.0, Measured: 2, Series: flat(5, 1), Step: step, Lead: time.Minute},
			to:       4,
			policy:   v1alpha1.ScalingReactive,
			mentions: []string{"predictive: 5 usage samples, a forecast needs 8: reactive only"},
		},
		{
			name: "predictive leads a ramp",
			// 0.46 cores on 2 replicas is within the reactive tolerance; the ramp reaches
			// about 0.7 in a minute, which needs 3.
			in:       DecisionInput{Policy: policy(true), Current: 2, Demand: 0.46, Measured: 2, Series: ramp(20, 0.08, 0.02), Step: step, Lead: time.Minute},
			to:       3,
			policy:   v1alpha1.ScalingPredictive,
			mentions: []string{"scaled 2 -> 3: cpu 0.23 cores per replica", "; predictive: forecast 0.5", " cores in 1m0s"},
		},
		{
			name:     "predictive keeps replicas while the forecast rises",
			in:       DecisionInput{Policy: policy(true), Current: 6, Demand: 0.5, Measured: 6, Series: ramp(20, 0.1, 0.02), Step: step, Lead: time.Minute},
			to:       6,
			policy:   v1alpha1.ScalingPredictive,
			mentions: []string{"; the forecast rises: no replica is removed"},
		},
		{
			name:       "floor held with too few samples",
			in:         DecisionInput{Policy: policy(true), Current: 4, Demand: 2, Measured: 4, Series: flat(3, 2), Step: step, Lead: time.Minute, Floor: true},
			to:         4,
			policy:     v1alpha1.ScalingReactive,
			noForecast: true,
			reason:     "minReplicas 4 -> 4: cpu 0.50 cores per replica against a target of 0.25 (50% of 500m); predictive: 3 usage samples, a forecast needs 8: minReplicas held",
		},
		{
			name:     "floor raised on a ramp",
			in:       DecisionInput{Policy: policy(true), Current: 2, Demand: 0.46, Measured: 2, Series: ramp(20, 0.08, 0.02), Step: step, Lead: time.Minute, Floor: true},
			to:       3,
			policy:   v1alpha1.ScalingPredictive,
			mentions: []string{"minReplicas 2 -> 3: cpu 0.23 cores per replica against a target of 0.25 (50% of 500m); predictive: forecast 0.5"},
		},
		{
			name:   "floor follows a high flat demand",
			in:     DecisionInput{Policy: policy(true), Current: 2, Demand: 1.6, Measured: 4, Series: flat(20, 1.6), Step: step, Lead: time.Minute, Floor: true},
			to:     7, // 1.6 cores need 7 replicas: the floor follows the forecast, whatever runs
			policy: v1alpha1.ScalingPredictive,
		},
		{
			name:   "floor without prediction is min",
			in:     DecisionInput{Policy: policy(false), Current: 5, Demand: 3, Measured: 5, Floor: true},
			to:     2,
			policy: v1alpha1.ScalingReactive,
		},
		{
			name:     "floor not lowered while the forecast rises",
			in:       DecisionInput{Policy: policy(true), Current: 6, Demand: 0.5, Measured: 6, Series: ramp(20, 0.1, 0.02), Step: step, Lead: time.Minute, Floor: true},
			to:       6,
			policy:   v1alpha1.ScalingPredictive,
			mentions: []string{"; the forecast rises: minReplicas is not lowered"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.RequestMilli, tt.in.Now = 500, t0
			d := Decide(tt.in, hpaFor(tt.in.Policy))
			if d.To != tt.to || d.Policy != tt.policy {
				t.Errorf("decided %d (%s), want %d (%s): %s", d.To, d.Policy, tt.to, tt.policy, d.Reason(tt.in.Current))
			}
			r := d.Reason(tt.in.Current)
			if tt.reason != "" && r != tt.reason {
				t.Errorf("reason\n%q, want\n%q", r, tt.reason)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(r, m) {
					t.Errorf("reason %q does not say %q", r, m)
				}
			}
			if tt.noForecast && d.Forecast {
				t.Errorf("a forecast of %.2f cores from too few samples", d.ForecastCores)
			}
			if d.Policy == v1alpha1.ScalingPredictive && (!d.Forecast || d.ForecastCores <= 0) {
				t.Errorf("a predictive decision without a forecast: %+v", d)
			}
		})
	}
}

// TestDecideFloorCooldown: in floor mode, a floor the forecast raised comes back to min when
// demand falls, but only once the scale-in cooldown has passed since the highest floor was
// recommended.
func TestDecideFloorCooldown(t *testing.T) {
	p := policy(true) // 60 s cooldown
	hpa := hpaFor(p)
	series := ramp(20, 0.08, 0.02)
	floor, now := 2, t0
	decide := func(demand float64) Decision {
		series = append(series, demand)
		now = now.Add(step)
		d := Decide(DecisionInput{Policy: p, Current: floor, RequestMilli: 500, Now: now, Demand: demand, Measured: 2,
			Series: series, Step: step, Lead: time.Minute, Floor: true}, hpa)
		floor = d.To
		return d
	}
	for floor <= p.Min {
		if now.Sub(t0) > 10*time.Minute {
			t.Fatal("the ramp never raised the floor")
		}
		decide(series[len(series)-1] + 0.02)
	}
	raised := floor
	fell := now.Add(step)
	for floor > p.Min {
		if now.Sub(fell) > 10*time.Minute {
			t.Fatalf("the floor stays at %d after the demand fell", floor)
		}
		d := decide(0.1)
		if floor > p.Min && floor < raised {
			t.Fatalf("the floor went from %d to %d, not back to min: %s", raised, floor, d.Reason(raised))
		}
	}
	if held := now.Sub(fell); held < time.Duration(p.ScaleInCooldownSeconds)*time.Second {
		t.Errorf("the floor came back to min %s after the demand fell, within the %d s cooldown", held, p.ScaleInCooldownSeconds)
	}
}

func TestRising(t *testing.T) {
	tests := []struct {
		fc   []float64
		want bool
	}{
		{[]float64{1, 1.1}, true},
		{[]float64{1, 1.04}, false}, // within 5%
		{[]float64{0, 0.0005}, false},
		{[]float64{2, 1}, false},
		{[]float64{1}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := Rising(tt.fc); got != tt.want {
			t.Errorf("Rising(%v) = %v, want %v", tt.fc, got, tt.want)
		}
	}
}

func TestDemandSeries(t *testing.T) {
	at := func(k int) time.Time { return t0.Add(time.Duration(k) * 10 * time.Second) }
	h := v1alpha1.UsageHistory{IntervalSeconds: 10, Instances: []v1alpha1.InstanceUsage{
		{Instance: "a", Points: []v1alpha1.UsagePoint{{Time: at(1), CPUCores: 0.5}, {Time: at(0), CPUCores: 0.25}}},
		{Instance: "b", Points: []v1alpha1.UsagePoint{{Time: at(1), CPUCores: 0.25}, {Time: at(2), CPUCores: 1}}},
	}}
	series, st := DemandSeries(h)
	if want := []float64{0.25, 0.75, 1}; !slices.Equal(series, want) || st != 10*time.Second {
		t.Errorf("DemandSeries = %v, %s; want %v, 10s", series, st, want)
	}
}

func TestRecord(t *testing.T) {
	d := Decide(DecisionInput{Policy: policy(true), Current: 2, RequestMilli: 500, Now: t0.Add(1500 * time.Millisecond), Demand: 0.4567, Measured: 2,
		Series: ramp(20, 0.08, 0.02), Step: step, Lead: time.Minute, Floor: true}, hpaFor(policy(true)))
	r := d.Record(2, t0.Add(1500*time.Millisecond), 0.4567)
	if !r.Time.Equal(t0.Add(time.Second)) || r.From != 2 || r.To != int32(d.To) || r.DemandCores != 0.457 || r.LeadSeconds != 60 ||
		r.ForecastCores <= 0 || r.Policy != v1alpha1.ScalingPredictive || r.Reason != d.Reason(2) {
		t.Errorf("record %+v", r)
	}
}

func TestLead(t *testing.T) {
	p := Policy{}
	if got := p.Lead(Startup(v1alpha1.TierVM, nil), 15*time.Second); got != DefaultStartup()[v1alpha1.TierVM]+15*time.Second {
		t.Errorf("vm lead %s", got)
	}
	if got := p.Lead(Startup(v1alpha1.TierContainer, map[v1alpha1.Tier]time.Duration{v1alpha1.TierContainer: time.Second}), time.Second); got != 2*time.Second {
		t.Errorf("container lead with a start-up of 1s: %s", got)
	}
	p.LeadSeconds = 90
	if got := p.Lead(time.Hour, time.Hour); got != 90*time.Second {
		t.Errorf("leadSeconds 90: %s", got)
	}
}
