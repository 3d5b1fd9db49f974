package control

import (
	"slices"
	"sync"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/scale"
)

// startupSamples is how many recent start-ups StartupTimes keeps per tier.
const startupSamples = 32

// StartupTimes keeps how long instances of each tier took on this host from the moment the
// controller started them until they could serve: until their first passing health check,
// or, without one, until their driver reported them running. The scaler provisions that far
// ahead (its lead time); the daemon also exports them as a metric.
type StartupTimes struct {
	mu      sync.Mutex
	samples map[v1alpha1.Tier][]time.Duration // the newest startupSamples, oldest first
}

// NewStartupTimes returns an empty StartupTimes.
func NewStartupTimes() *StartupTimes {
	return &StartupTimes{samples: map[v1alpha1.Tier][]time.Duration{}}
}

// Observe records one start-up of tier. A nil StartupTimes records nothing.
func (s *StartupTimes) Observe(tier v1alpha1.Tier, d time.Duration) {
	if s == nil || d < 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples[tier] = append(s.samples[tier], d)
	if l := s.samples[tier]; len(l) > startupSamples {
		s.samples[tier] = slices.Clone(l[len(l)-startupSamples:])
	}
}

// Median returns the median of tier's recent start-ups and how many there are (0: none
// measured yet, and the duration is zero).
func (s *StartupTimes) Median(tier v1alpha1.Tier) (time.Duration, int) {
	if s == nil {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return scale.MedianStartup(s.samples[tier])
}
