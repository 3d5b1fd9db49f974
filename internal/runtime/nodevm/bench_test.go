package nodevm_test

import (
	"fmt"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// BenchmarkStartTrue measures the start of a container that runs `true`,
// from Start to its exit, then its removal: in a running
// node VM (nodevm, runc in the guest) and on the host (containerd, runc),
// side by side. The end is the driver's exit event, as a controller learns
// of it. The node VM boots before the timer starts.
func BenchmarkStartTrue(b *testing.B) {
	s := needNodeVMs(b)
	s.removeNodeVMs(b)
	drivers := []struct {
		name string
		d    runtime.Driver
	}{
		{"nodevm", s.driver(b)},
		{"containerd", s.images},
	}
	for _, tt := range drivers {
		b.Run(tt.name, func(b *testing.B) {
			events, err := tt.d.(runtime.EventSource).Events(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			var started, exited, removed time.Duration
			run := func(i int) {
				id := fmt.Sprintf("bench-%s-%d", tt.name, i)
				begin := time.Now()
				spec := runtime.InstanceSpec{ID: id, Workload: "bench", Tier: v1alpha1.TierContainer, Image: s.image, Command: []string{"true"}}
				if _, err := tt.d.Start(b.Context(), spec); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				waitExit(b, events, id)
				t2 := time.Now()
				if err := tt.d.Remove(b.Context(), id); err != nil {
					b.Fatal(err)
				}
				if i > 0 {
					started += t1.Sub(begin)
					exited += t2.Sub(t1)
					removed += time.Since(t2)
				}
			}
			run(0) // boots the node VM, plugs the image in
			b.ResetTimer()
			for i := range b.N {
				run(i + 1)
			}
			b.ReportMetric(float64(started.Milliseconds())/float64(b.N), "ms-start/op")
			b.ReportMetric(float64(exited.Milliseconds())/float64(b.N), "ms-to-exit/op")
			b.ReportMetric(float64(removed.Milliseconds())/float64(b.N), "ms-remove/op")
		})
	}
}

// waitExit waits for id's exit event, as a controller learns of it, and
// checks its code.
func waitExit(b *testing.B, events <-chan runtime.Event, id string) {
	b.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case e := <-events:
			if e.ID != id || e.Type != runtime.EventExit {
				continue
			}
			if e.ExitCode != 0 {
				b.Fatalf("%s: exit code %d", id, e.ExitCode)
			}
			return
		case <-timeout:
			b.Fatalf("%s: no exit event within 2 minutes", id)
		}
	}
}
