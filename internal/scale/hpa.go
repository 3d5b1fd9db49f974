package scale

import (
	"math"
	"time"
)

// Defaults of the HPA algorithm, as Kubernetes documents them.
const (
	// DefaultTolerance: no change while the utilization ratio is within 10% of 1.
	DefaultTolerance = 0.1
	// DefaultScaleDownWindow: scale in to the highest recommendation of the last 300 s.
	DefaultScaleDownWindow = 300 * time.Second
	// DefaultScaleUpWindow: scale out at once.
	DefaultScaleUpWindow = 0
)

// Desired is the HPA formula: ceil(current * utilization / target). While the ratio
// utilization/target is within tolerance of 1, it returns current unchanged. Utilization and
// target are fractions of the CPU request (0.7 for 70%).
func Desired(current int, utilization, target, tolerance float64) int {
	if target <= 0 {
		return current
	}
	ratio := utilization / target
	if math.Abs(ratio-1) <= tolerance+1e-9 { // 0.77/0.7 is 1.1000000000000003
		return current
	}
	return ceil(float64(current) * ratio)
}

// ceil rounds up, forgiving the last bits of floating-point error (3 * 0.7/0.7 is 3, not 4).
func ceil(x float64) int {
	return int(math.Ceil(x - 1e-9))
}

// HPA is the Kubernetes horizontal pod autoscaler's algorithm for one workload: the formula
// of Desired, then stabilization, then the Min/Max clamp. It keeps the recommendations of the
// last window; the caller passes the time of every decision.
type HPA struct {
	Min, Max int
	// Target is the target utilization as a fraction of the CPU request.
	Target float64
	// Tolerance around a ratio of 1 within which nothing changes.
	Tolerance float64
	// ScaleDownWindow: scaling in goes to the highest recommendation within the window.
	ScaleDownWindow time.Duration
	// ScaleUpWindow: scaling out goes to the lowest recommendation within the window.
	ScaleUpWindow time.Duration

	history []recommendation
}

type recommendation struct {
	at       time.Time
	replicas int
}

// NewHPA returns an HPA with Kubernetes' default tolerance and windows.
func NewHPA(minReplicas, maxReplicas int, target float64) *HPA {
	return &HPA{Min: minReplicas, Max: maxReplicas, Target: target, Tolerance: DefaultTolerance,
		ScaleDownWindow: DefaultScaleDownWindow, ScaleUpWindow: DefaultScaleUpWindow}
}

// Scale decides the replica count at now, given the current count and the measured
// utilization of the current replicas (usage / (current * request)). With no current replica
// the formula has nothing to scale, and the recommendation is Min.
//
// Stabilization follows Kubernetes: the raw recommendation is recorded; scaling out goes no
// higher than the lowest recommendation of the scale-up window, scaling in no lower than the
// highest of the scale-down window. A recommendation made exactly one window ago still counts.
func (h *HPA) Scale(now time.Time, current int, utilization float64) int {
	raw := h.Min
	if current > 0 {
		raw = Desired(current, utilization, h.Target, h.Tolerance)
	}
	return h.record(now, current, raw)
}

// ScaleTo is Scale for a recommendation computed elsewhere (a forecast, say): stabilization
// and the clamp apply to it as they would to the formula's.
func (h *HPA) ScaleTo(now time.Time, current, recommended int) int {
	return h.record(now, current, recommended)
}

func (h *HPA) record(now time.Time, current, raw int) int {
	h.history = append(h.history, recommendation{at: now, replicas: raw})
	keep := max(h.ScaleDownWindow, h.ScaleUpWindow)
	drop := 0
	for drop < len(h.history) && h.history[drop].at.Before(now.Add(-keep)) {
		drop++
	}
	h.history = h.history[drop:]

	up, down := raw, raw
	for _, r := range h.history {
		if !r.at.Before(now.Add(-h.ScaleUpWindow)) {
			up = min(up, r.replicas)
		}
		if !r.at.Before(now.Add(-h.ScaleDownWindow)) {
			down = max(down, r.replicas)
		}
	}
	next := current
	if next < up {
		next = up
	}
	if next > down {
		next = down
	}
	return clamp(next, h.Min, h.Max)
}

func clamp(n, lo, hi int) int {
	return max(lo, min(n, hi))
}
