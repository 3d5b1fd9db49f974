package scale

import (
	"math"
	"math/rand/v2"
	"time"
)

// SynthOptions shape a synthetic trace. Zero fields take the defaults in brackets.
type SynthOptions struct {
	// Base is the mean demand of a weekday, in cores [20].
	Base float64
	// Daily is the daily swing: the peak is Base*(1+Daily) in the afternoon, the trough
	// Base*(1-Daily) before dawn [0.5].
	Daily float64
	// WeekendDip is how much less a weekend day sees, as a fraction [0.3]; -1 for none.
	WeekendDip float64
	// Noise is the standard deviation of the multiplicative noise, which is autocorrelated
	// over about half an hour [0.04].
	Noise float64
	// BurstsPerWeek is the mean number of bursts: unannounced surges lasting 15 to 90 minutes
	// [3]; -1 for none.
	BurstsPerWeek float64
	// BurstSize is a burst's peak, as a fraction of the demand it lands on [0.4].
	BurstSize float64
	// GrowthPerWeek is the slow growth of demand, as a fraction per week [0.02].
	GrowthPerWeek float64
	// Start is the first interval's time [Monday 2024-01-01 00:00 UTC].
	Start time.Time
}

func (o *SynthOptions) defaults() {
	def := func(v *float64, d float64) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	def(&o.Base, 20)
	def(&o.Daily, 0.5)
	def(&o.WeekendDip, 0.3)
	def(&o.Noise, 0.04)
	def(&o.BurstsPerWeek, 3)
	def(&o.BurstSize, 0.4)
	def(&o.GrowthPerWeek, 0.02)
	if o.Start.IsZero() {
		o.Start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
}

// Synthetic makes a trace of days days at the given step that looks like a service's CPU
// demand: a daily cycle peaking in the afternoon, quieter weekends, autocorrelated noise,
// occasional bursts and slow growth. The same seed gives the same trace.
func Synthetic(days int, step time.Duration, seed int64, opts SynthOptions) *Trace {
	opts.defaults()
	if step <= 0 {
		step = 5 * time.Minute
	}
	n := int(time.Duration(days) * Day / step)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5ca1e)) //nolint:gosec // a seeded, reproducible trace, not a secret
	tr := &Trace{Start: opts.Start, Step: step, CPU: make([]float64, n)}

	// Noise: AR(1) with a correlation time of about 30 minutes and stationary deviation Noise.
	rho := math.Exp(-float64(step) / float64(30*time.Minute))
	innov := opts.Noise * math.Sqrt(1-rho*rho)
	noise := opts.Noise * rng.NormFloat64()

	// Bursts: a Poisson number per interval; each rises fast and decays.
	perStep := opts.BurstsPerWeek * float64(step) / float64(Week)
	burst := make([]float64, n)
	for i := range n {
		if rng.Float64() >= perStep {
			continue
		}
		length := 15*time.Minute + time.Duration(rng.Float64()*float64(75*time.Minute))
		size := opts.BurstSize * (0.5 + rng.Float64())
		steps := max(1, int(length/step))
		for k := 0; k < steps && i+k < n; k++ {
			shape := math.Sin(math.Pi * (float64(k) + 0.5) / float64(steps))
			burst[i+k] = max(burst[i+k], size*shape)
		}
	}

	for i := range n {
		at := opts.Start.Add(time.Duration(i) * step)
		hour := float64(at.Hour()) + float64(at.Minute())/60 + float64(at.Second())/3600
		// Peak at 14:00, trough near 03:00; the second harmonic makes mornings steeper.
		cycle := 0.8*math.Cos(2*math.Pi*(hour-14)/24) + 0.2*math.Cos(4*math.Pi*(hour-14)/24)
		level := 1 + opts.Daily*cycle
		if wd := at.Weekday(); wd == time.Saturday || wd == time.Sunday {
			level *= 1 - opts.WeekendDip
		}
		growth := 1 + opts.GrowthPerWeek*float64(time.Duration(i)*step)/float64(Week)
		noise = rho*noise + innov*rng.NormFloat64()
		v := opts.Base * growth * level * (1 + noise) * (1 + burst[i])
		tr.CPU[i] = max(0, v)
	}
	return tr
}
