package cli

import (
	"testing"
	"time"

	"strata.dev/strata/internal/objects"
)

func TestSeriesReason(t *testing.T) {
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		e    objects.Event
		want string
	}{
		{objects.Event{Reason: "Started", Time: first}, "Started"},
		{objects.Event{Reason: "FailedStart", Count: 37, FirstTime: &first, Time: first.Add(12*time.Minute + 30*time.Second)}, "FailedStart x37 over 12m"},
		{objects.Event{Reason: "FailedStart", Count: 2, FirstTime: &first, Time: first.Add(3 * time.Second)}, "FailedStart x2 over 3s"},
		{objects.Event{Reason: "Unhealthy", Count: 900, FirstTime: &first, Time: first.Add(5 * time.Hour)}, "Unhealthy x900 over 5h"},
	} {
		if got := seriesReason(tc.e); got != tc.want {
			t.Errorf("seriesReason(%+v) = %q, want %q", tc.e, got, tc.want)
		}
	}
}
