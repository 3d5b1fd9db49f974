package nodevm_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/nodevm"
	"strata.dev/strata/internal/testenv"
)

// BenchmarkStartTrue measures the start of a container that runs `true`,
// from Start to its exit, then its removal, side by side: in a running
// node VM with crun in the guest (nodevm-crun, the driver's way) and with
// runc (nodevm-runc, as before crun; one node VM whose tools disk carries
// both), and on the host (containerd, runc). The end is the driver's exit
// event, as a controller learns of it. The node VM boots before the timer
// starts. Run it with -bench StartTrue -benchtime 5x.
func BenchmarkStartTrue(b *testing.B) {
	s := needNodeVMs(b)
	s.tools.Runc = "/usr/sbin/runc"
	if _, err := os.Stat(s.tools.Runc); err != nil {
		testenv.Skipf(b, "skipping: no runc on the host to compare crun with (%v); make host-setup installs it", err)
	}
	s.removeNodeVMs(b)
	runc := s
	runc.containerRuntime = guest.RuntimeRunc
	drivers := []struct {
		name string
		d    runtime.Driver
		// bin and root are the runtime that must know the driver's
		// containers in the node VM; none on the host.
		bin, root string
	}{
		{"nodevm-crun", s.driver(b), guest.CrunPath, "/run/crun"},
		{"nodevm-runc", runc.driver(b), guest.RuncPath, "/run/runc"},
		{"containerd", s.images, "", ""},
	}
	for _, tt := range drivers {
		b.Run(tt.name, func(b *testing.B) {
			if tt.bin != "" {
				s.checkRuntime(b, tt.d, tt.name, tt.bin, tt.root)
			}
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

// checkRuntime starts a container with d and checks that the runtime bin
// (its state in root) in the node VM runs it, so that the benchmark's
// names say what ran.
func (s setup) checkRuntime(b *testing.B, d runtime.Driver, name, bin, root string) {
	b.Helper()
	id := "bench-" + name + "-runtime"
	spec := runtime.InstanceSpec{ID: id, Workload: "bench", Tier: v1alpha1.TierContainer, Image: s.image, Command: []string{"sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"}}
	if _, err := d.Start(b.Context(), spec); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := d.Stop(context.Background(), id, time.Second); err != nil {
			b.Errorf("%s: stop %s: %v", name, id, err)
		}
		if err := d.Remove(context.Background(), id); err != nil {
			b.Errorf("%s: remove %s: %v", name, id, err)
		}
	}()
	var out bytes.Buffer
	code, err := s.q.Exec(b.Context(), nodevm.VMID(nodevm.DefaultClass), []string{bin, "--root", root, "state", id}, nil, &out, &out)
	if err != nil || code != 0 {
		b.Fatalf("%s: %s does not know its container %s: exit code %d, %v: %s", name, bin, id, code, err, out.String())
	}
}
