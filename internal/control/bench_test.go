package control

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/runtime/fake"
	"strata.dev/strata/internal/store"
)

// benchWorkloads is how many workloads the convergence benchmarks store.
const benchWorkloads = 200

// benchSetup is a stored estate of benchWorkloads workloads and a controller for it over the
// fake driver on the wall clock: replicas cycle 1, 2, 3 (400 instances in all) and every
// third workload is at the sandbox tier, the others at the container tier.
type benchSetup struct {
	st    *store.Store
	host  *fake.Host
	c     *Controller
	names []string
}

func newBenchSetup(tb testing.TB) *benchSetup {
	tb.Helper()
	dir := tb.TempDir()
	st, err := store.Open(filepath.Join(dir, "strata.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	host := fake.NewHost(fake.HostOptions{})
	d, err := fake.New(fake.Options{Host: host, Tiers: []v1alpha1.Tier{v1alpha1.TierContainer, v1alpha1.TierSandbox}, Images: []string{image}})
	if err != nil {
		tb.Fatal(err)
	}
	reg, err := runtime.NewRegistry(d)
	if err != nil {
		tb.Fatal(err)
	}
	s := &benchSetup{st: st, host: host, c: New(Options{Store: st, Drivers: reg, DataDir: filepath.Join(dir, "data")})}
	ctx := context.Background()
	tb.Cleanup(func() {
		// Stopped instances end their goroutines on the fake host.
		insts, _ := d.List(ctx)
		for _, in := range insts {
			_ = d.Stop(ctx, in.ID, time.Second)
		}
	})
	for i := range benchWorkloads {
		replicas := int32(i%3 + 1)
		tier := v1alpha1.TierContainer
		if i%3 == 2 {
			tier = v1alpha1.TierSandbox
		}
		w := v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: fmt.Sprintf("app-%03d", i)}}
		w.Spec.Image = image
		w.Spec.Command = script.Serve(100000)
		w.Spec.Replicas = &replicas
		w.SetDefaults()
		rec, err := objects.Record(v1alpha1.KindWorkload, w.Metadata, w.Spec, v1alpha1.WorkloadStatus{Tier: tier, Phase: v1alpha1.PhasePending})
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := st.Create(ctx, rec); err != nil {
			tb.Fatal(err)
		}
		s.names = append(s.names, w.Metadata.Name)
	}
	return s
}

// converge runs the controller until every workload's status says Running and returns how
// long that took; the controller is stopped before it returns.
func (s *benchSetup) converge(tb testing.TB) time.Duration {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := s.st.Watch(ctx, v1alpha1.KindWorkload, s.st.Revision())
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- s.c.Run(ctx) }()
	running := map[string]bool{}
	timeout := time.After(2 * time.Minute)
	for len(running) < len(s.names) {
		select {
		case ev, ok := <-events:
			if !ok || ev.Type == store.Error {
				tb.Fatalf("the store's watch ended after %d of %d workloads ran: %v", len(running), len(s.names), ev.Err)
			}
			w, err := objects.Workload(ev.Object)
			if err != nil {
				tb.Fatal(err)
			}
			if w.Status != nil && w.Status.Phase == v1alpha1.PhaseRunning {
				running[w.Metadata.Name] = true
			}
		case err := <-done:
			tb.Fatalf("the controller stopped after %d of %d workloads ran: %v", len(running), len(s.names), err)
		case <-timeout:
			tb.Fatalf("only %d of %d workloads Running after 2m", len(running), len(s.names))
		}
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	return elapsed
}

// BenchmarkConverge200 measures the workload controller over 200 stored workloads (400
// instances at two tiers) on the fake driver, so that only strata's own work counts: store
// reads and status writes (each an fsynced bbolt transaction), driver calls and the
// controller's bookkeeping, without real containers.
//
//   - from-empty: one controller brings every workload from nothing to Running.
//   - resync: the steady state, one full resync pass over the converged workloads, which is
//     what the controller does on every resync tick (every 2s by default): a list of the
//     stored workloads and a Reconcile of each. Nothing changes, so nothing is started and
//     no status is written (the benchmark fails if the store's revision moves).
func BenchmarkConverge200(b *testing.B) {
	b.Run("from-empty", func(b *testing.B) {
		b.ReportAllocs()
		var total time.Duration
		for range b.N {
			b.StopTimer()
			s := newBenchSetup(b)
			b.StartTimer()
			total += s.converge(b)
		}
		b.ReportMetric(float64(benchWorkloads*b.N)/total.Seconds(), "workloads/s")
	})
	b.Run("resync", func(b *testing.B) {
		s := newBenchSetup(b)
		s.converge(b)
		ctx := context.Background()
		rev := s.st.Revision()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			recs, _, err := s.st.List(ctx, v1alpha1.KindWorkload)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range recs {
				if _, err := s.c.Reconcile(ctx, r.Name); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		if s.st.Revision() != rev {
			b.Fatalf("a resync of converged workloads wrote to the store (revision %d -> %d)", rev, s.st.Revision())
		}
		b.ReportMetric(float64(benchWorkloads*b.N)/b.Elapsed().Seconds(), "workloads/s")
	})
}
