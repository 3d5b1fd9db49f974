package scale

import (
	"slices"
	"testing"
	"time"
)

func TestMedianStartup(t *testing.T) {
	ms := func(l ...int) []time.Duration {
		var out []time.Duration
		for _, n := range l {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		want    time.Duration
		n       int
	}{
		{"none", nil, 0, 0},
		{"one", ms(700), 700 * time.Millisecond, 1},
		{"odd, unsorted", ms(900, 100, 500), 500 * time.Millisecond, 3},
		{"even: the mean of the middle two", ms(900, 100, 700, 500), 600 * time.Millisecond, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.samples)
			if d, n := MedianStartup(tc.samples); d != tc.want || n != tc.n {
				t.Errorf("MedianStartup(%v) = %v of %d, want %v of %d", tc.samples, d, n, tc.want, tc.n)
			}
			if !slices.Equal(tc.samples, before) {
				t.Errorf("MedianStartup reordered its samples: %v", tc.samples)
			}
		})
	}
}
