package scale

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// series makes n points step apart from f(t), with Gaussian noise of the given standard
// deviation (seeded).
func series(n int, step time.Duration, noise float64, f func(t time.Duration) float64) []float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]float64, n)
	for i := range out {
		out[i] = f(time.Duration(i)*step) + noise*rng.NormFloat64()
	}
	return out
}

func dailySine(t time.Duration) float64 {
	return 20 * math.Sin(2*math.Pi*float64(t)/float64(Day))
}

func TestSeasonalNaiveExactOnPeriodicSeries(t *testing.T) {
	step := time.Hour
	for _, season := range []time.Duration{Day, Week} {
		periodic := func(t time.Duration) float64 {
			return 50 + float64((t%season)/step) // a sawtooth: 50, 51, ... over one season
		}
		all := series(3*int(season/step), step, 0, periodic)
		train, future := all[:2*int(season/step)], all[2*int(season/step):]
		m := &SeasonalNaive{Season: season}
		if err := m.Fit(train, step); err != nil {
			t.Fatal(err)
		}
		got := m.Predict(len(future))
		for i := range future {
			if got[i] != future[i] {
				t.Fatalf("%s: point %d: %v, want %v", m.Name(), i, got[i], future[i])
			}
		}
		m.Observe(future[0])
		if p := m.Predict(1)[0]; p != future[1] {
			t.Errorf("%s after Observe: %v, want %v", m.Name(), p, future[1])
		}
	}
}

func TestHoltWintersOnDailySineWithTrend(t *testing.T) {
	step := 5 * time.Minute
	perDay := int(Day / step)
	f := func(t time.Duration) float64 {
		return 100 + 10*float64(t)/float64(Day) + dailySine(t) // +10 cores a day
	}
	tests := []struct {
		name   string
		model  *HoltWinters
		noise  float64
		days   int
		maxErr float64 // MAPE of a one-day-ahead forecast, percent
	}{
		{"clean daily", NewHoltWinters(Day), 0, 7, 1},
		{"noisy daily", NewHoltWinters(Day), 3, 7, 5},
		{"clean double seasonal", NewHoltWinters(Day, Week), 0, 15, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := series((tt.days+1)*perDay, step, tt.noise, f)
			train := all[:tt.days*perDay]
			if err := tt.model.Fit(train, step); err != nil {
				t.Fatal(err)
			}
			truth := series((tt.days+1)*perDay, step, 0, f)[tt.days*perDay:]
			mape := MAPE(truth, tt.model.Predict(perDay))
			t.Logf("%s: alpha %.3g beta %.3g gammas %v: MAPE %.2f%%", tt.model.Name(), tt.model.Alpha, tt.model.Beta, tt.model.Gammas, mape)
			if mape >= tt.maxErr {
				t.Errorf("MAPE %.2f%%, want below %v%%", mape, tt.maxErr)
			}
		})
	}
}

// TestSelect checks that the backtest picks a weekly model when weekends differ most, and a
// daily one when every day looks the same.
func TestSelect(t *testing.T) {
	step := time.Hour
	weekly := func(t time.Duration) float64 {
		day := int(t / Day % 7)
		v := 100 + 5*math.Sin(2*math.Pi*float64(t)/float64(Day))
		if day >= 5 { // weekend
			v -= 60
		}
		return v
	}
	daily := func(t time.Duration) float64 { return 100 + dailySine(t) }
	tests := []struct {
		name string
		f    func(time.Duration) float64
		want string // substring of the chosen model's name
	}{
		{"weekly cycle dominates", weekly, "weekly"},
		{"daily cycle only", daily, "holt-winters-daily"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := series(5*7*24, step, 2, tt.f)
			sel, err := Select(s, step, Candidates(), 7*24)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("scores: %+v", sel.Scores)
			if !strings.Contains(sel.Best.Name(), tt.want) {
				t.Errorf("chose %s, want a model named *%s*", sel.Best.Name(), tt.want)
			}
		})
	}
}

func TestSelectErrors(t *testing.T) {
	short := make([]float64, 30)
	if _, err := Select(short, time.Hour, Candidates(), 10); !errors.Is(err, ErrShortSeries) {
		t.Errorf("20 hourly points: %v, want ErrShortSeries", err)
	}
	if _, err := Select(short, time.Hour, Candidates(), 30); err == nil || !strings.Contains(err.Error(), "holdout 30") {
		t.Errorf("holdout as long as the series: %v", err)
	}
	sel, err := Select(make([]float64, 30), time.Hour, []Forecaster{&SeasonalNaive{Season: time.Hour}, NewHoltWinters(Day)}, 5)
	if err != nil || sel.Best.Name() != "naive" || sel.Scores[1].Err == "" {
		t.Errorf("a short series keeps the naive model and explains the other: %+v, %v", sel, err)
	}
}

func TestMAPE(t *testing.T) {
	if got := MAPE([]float64{100, 0, 50}, []float64{110, 3, 45}); math.Abs(got-10) > 1e-9 {
		t.Errorf("MAPE = %v, want 10 (zero actuals skipped)", got)
	}
}
