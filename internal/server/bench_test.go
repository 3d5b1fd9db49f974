package server_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/server"
	"strata.dev/strata/internal/store"
)

// The read benchmark's load.
const (
	readRate     = 1000            // requests per second
	readDuration = 5 * time.Second // of load per op
	readStore    = 100             // workloads stored
	// maxReadOps bounds one run to a minute of load whatever -benchtime asks.
	maxReadOps = 12
)

// countingListener counts the connections the server accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// startLoaded runs a server over a real store on a unix socket and stores n workloads the way
// a running daemon holds them: admitted through the API (assessed), then given a status with
// their instances running, as the controller writes it.
func startLoaded(tb testing.TB, n int) (*client.Client, *countingListener, []string) {
	tb.Helper()
	dir := tb.TempDir()
	st, err := store.Open(filepath.Join(dir, "strata.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	ul, err := server.ListenUnix(sock)
	if err != nil {
		tb.Fatal(err)
	}
	l := &countingListener{Listener: ul}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.New(server.Options{Store: st}).Serve(ctx, l) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("serve: %v", err)
		}
		_ = st.Close()
	})
	c := client.NewUnix(sock)
	names := make([]string, n)
	started := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range names {
		names[i] = fmt.Sprintf("app-%03d", i)
		replicas := i%3 + 1
		doc := fmt.Sprintf(`apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: %s, labels: {strata.dev/tenant: shop, app: %s}}
spec:
  image: localhost/shop/%s:1.4
  command: ["/bin/server", "--port", "8080"]
  env: {LOG_LEVEL: info}
  replicas: %d
  resources: {cpu: 500m, memory: 256Mi}
  ports: [{name: http, port: 8080}]
  traits: {data: %s}
`, names[i], names[i], names[i], replicas, []string{"internal", "confidential"}[i%2])
		var w v1alpha1.Workload
		if err := c.Create(ctx, "workloads", []byte(doc), false, &w); err != nil {
			tb.Fatal(err)
		}
		status := *w.Status
		status.Phase = v1alpha1.PhaseRunning
		for slot := range replicas {
			status.Instances = append(status.Instances, v1alpha1.Instance{
				ID: fmt.Sprintf("%s-%d", names[i], slot), Tier: status.Tier, State: "running",
				IP: fmt.Sprintf("10.213.%d.%d", i/200, 2+(i*3+slot)%250), PID: 10000 + i*3 + slot,
				StartedAt: &started,
			})
		}
		status.Conditions = []v1alpha1.Condition{{Type: "Ready", Status: v1alpha1.ConditionTrue, Reason: "AllRunning",
			Message: fmt.Sprintf("%d of %d instances running", replicas, replicas), LastTransitionTime: started}}
		cur, err := st.Get(ctx, v1alpha1.KindWorkload, names[i])
		if err != nil {
			tb.Fatal(err)
		}
		rec, err := objects.Record(v1alpha1.KindWorkload, w.Metadata, w.Spec, status)
		if err != nil {
			tb.Fatal(err)
		}
		rec.ResourceVersion = cur.ResourceVersion
		if _, err := st.UpdateStatus(ctx, rec); err != nil {
			tb.Fatal(err)
		}
	}
	return c, l, names
}

// BenchmarkAPIReads measures the API's read latency under a steady 1,000 requests/s from
// clients on the daemon's unix socket, over a store of 100 workloads as a running daemon
// holds them. Each answer is read in full.
//
//   - get-list: nine GETs of a workload (round robin) for every LIST of all 100 workloads;
//   - get: GETs only.
//
// The load is open-loop: request i is due at start + i ms whatever the earlier ones are
// doing, and each runs in its own goroutine, so slow answers pile up instead of lowering the
// rate. A request's latency runs from when it is sent to when its answer has been read; how
// late the generator sent it is reported apart (late-*): when that stays small the schedule
// held, and latency from the due time is at most the two added. One op is five seconds of
// load (5,000 requests), so the default -benchtime runs one; ns/op, which would only echo
// that, is not reported. Reported, in milliseconds: p50, p99 and max over all requests, p99
// of GETs and of LISTs, and p50 and p99 of the lateness; req/s is the rate achieved and
// conns/req the connections the server accepted per request (the client keeps two idle
// connections, so overlapping requests open new ones).
func BenchmarkAPIReads(b *testing.B) {
	b.Run("get-list", func(b *testing.B) { readLoad(b, 10) })
	b.Run("get", func(b *testing.B) { readLoad(b, 0) })
}

// readLoad runs the open-loop load for b.N (at most maxReadOps) times readDuration; every
// listEvery-th request is a LIST (0: none).
func readLoad(b *testing.B, listEvery int) {
	c, l, names := startLoaded(b, readStore)
	isList := func(i int) bool { return listEvery > 0 && i%listEvery == listEvery-1 }
	n := min(b.N, maxReadOps) * int(readDuration.Seconds()*readRate)
	lat := make([]time.Duration, n)
	late := make([]time.Duration, n)
	var (
		wg       sync.WaitGroup
		failures atomic.Int64
		firstErr atomic.Value
	)
	ctx := context.Background()
	interval := time.Second / readRate
	accepted := l.accepted.Load()
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := time.Now()
			late[i] = sent.Sub(due)
			var err error
			if isList(i) {
				err = c.List(ctx, "workloads", nil)
			} else {
				err = c.Get(ctx, "workloads", names[i%len(names)], nil)
			}
			lat[i] = time.Since(sent)
			if err != nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failures.Load(); f > 0 {
		b.Fatalf("%d of %d requests failed, the first with: %v", f, n, firstErr.Load())
	}
	var gets, lists []time.Duration
	for i, d := range lat {
		if isList(i) {
			lists = append(lists, d)
		} else {
			gets = append(gets, d)
		}
	}
	all := slices.Clone(lat)
	for _, s := range [][]time.Duration{all, gets, lists, late} {
		slices.Sort(s)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(quantile(all, 0.50)), "p50-ms")
	b.ReportMetric(ms(quantile(all, 0.99)), "p99-ms")
	b.ReportMetric(ms(all[len(all)-1]), "max-ms")
	b.ReportMetric(ms(quantile(gets, 0.99)), "get-p99-ms")
	if len(lists) > 0 {
		b.ReportMetric(ms(quantile(lists, 0.99)), "list-p99-ms")
	}
	b.ReportMetric(ms(quantile(late, 0.50)), "late-p50-ms")
	b.ReportMetric(ms(quantile(late, 0.99)), "late-p99-ms")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(l.accepted.Load()-accepted)/float64(n), "conns/req")
}

// quantile returns the q-quantile of sorted durations (nearest rank); 0 for none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
