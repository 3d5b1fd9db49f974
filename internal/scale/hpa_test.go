package scale

import (
	"testing"
	"time"
)

// TestDesired checks the formula against the Kubernetes documentation's examples and numbers
// derived by hand from it.
func TestDesired(t *testing.T) {
	tests := []struct {
		name         string
		current      int
		util, target float64
		want         int
	}{
		// "if the current metric value is 200m, and the desired value is 100m, the number of
		// replicas will be doubled": ratio 2.
		{"double at twice the target", 3, 1.4, 0.7, 6},
		// "If the current value is instead 50m, you'll halve the number of replicas."
		{"halve at half the target", 4, 0.35, 0.7, 2},
		// The walkthrough: one php-apache replica at 305% of a 50% target: ceil(6.1) = 7.
		{"walkthrough 305% of 50%", 1, 3.05, 0.5, 7},
		{"on target", 10, 0.7, 0.7, 10},
		{"within tolerance above", 10, 0.735, 0.7, 10}, // ratio 1.05
		{"within tolerance below", 10, 0.665, 0.7, 10}, // ratio 0.95
		{"tolerance edge 1.1 keeps", 10, 0.77, 0.7, 10},
		{"tolerance edge 0.9 keeps", 10, 0.63, 0.7, 10},
		{"just past tolerance", 10, 0.777, 0.7, 12},           // ratio 1.11: ceil(11.1)
		{"just below tolerance", 10, 0.623, 0.7, 9},           // ratio 0.89: ceil(8.9)
		{"exact multiple is not rounded up", 3, 0.98, 0.7, 5}, // ratio 1.4: 4.2 -> 5
		{"idle", 5, 0, 0.7, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Desired(tt.current, tt.util, tt.target, DefaultTolerance); got != tt.want {
				t.Errorf("Desired(%d, %v, %v) = %d, want %d", tt.current, tt.util, tt.target, got, tt.want)
			}
		})
	}
}

func TestHPAClamp(t *testing.T) {
	now := time.Unix(0, 0)
	tests := []struct {
		name     string
		current  int
		util     float64
		min, max int
		want     int
	}{
		{"max caps scale-out", 8, 1.4, 1, 10, 10},
		{"min holds scale-in", 4, 0.07, 3, 10, 3},
		{"inside the bounds", 4, 1.4, 1, 10, 8},
		{"no replica: min", 0, 0, 2, 10, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHPA(tt.min, tt.max, 0.7)
			if got := h.Scale(now, tt.current, tt.util); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

// TestHPAStabilization replays a sequence of decisions: scaling in waits for the highest
// recommendation of the last 300 s, scaling out is immediate by default and waits for the
// lowest recommendation of the scale-up window when one is set.
func TestHPAStabilization(t *testing.T) {
	type step struct {
		at      time.Duration
		current int
		util    float64
		want    int
	}
	tests := []struct {
		name     string
		upWindow time.Duration
		steps    []step
	}{
		{"scale-in keeps the highest recommendation of 300 s", 0, []step{
			{0, 10, 0.7, 10},
			{60 * time.Second, 10, 0.35, 10}, // raw 5, but 10 was recommended 60 s ago
			{120 * time.Second, 10, 0.49, 10},
			{300 * time.Second, 10, 0.35, 10}, // the 10 of t=0 is exactly 300 s old: still counts
			{301 * time.Second, 10, 0.35, 7},  // highest left in the window: 7 (t=120 s)
			{421 * time.Second, 7, 0.5, 5},    // raw ceil(7*0.5/0.7) = 5; the 7 of t=120 s left the window
		}},
		{"scale-out is immediate", 0, []step{
			{0, 4, 0.7, 4},
			{15 * time.Second, 4, 1.4, 8},
		}},
		{"scale-up window waits for the lowest recommendation", 60 * time.Second, []step{
			{0, 4, 0.7, 4},
			{30 * time.Second, 4, 1.4, 4},  // raw 8, lowest in 60 s is 4
			{61 * time.Second, 4, 1.4, 8},  // the 4 of t=0 left the window
			{90 * time.Second, 8, 0.7, 8},  // on target
			{100 * time.Second, 8, 2.1, 8}, // raw 24, lowest in 60 s is 8
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHPA(1, 100, 0.7)
			h.ScaleUpWindow = tt.upWindow
			start := time.Unix(1000, 0)
			for i, s := range tt.steps {
				if got := h.Scale(start.Add(s.at), s.current, s.util); got != s.want {
					t.Errorf("step %d (t=%v): got %d, want %d", i, s.at, got, s.want)
				}
			}
		})
	}
}
