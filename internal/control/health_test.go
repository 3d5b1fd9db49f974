package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
)

func withHealth(doc string, probe []string, threshold int) string {
	cmd, _ := json.Marshal(probe)
	return doc + "  health: {exec: {command: " + string(cmd) + "}, intervalSeconds: 1, failureThreshold: " + itoaInt(threshold) + "}\n"
}

func itoaInt(i int) string { return strconv.Itoa(i) }

// TestHealthCheckRestarts: failureThreshold failed probes in a row restart the instance.
func TestHealthCheckRestarts(t *testing.T) {
	e := newEnv(t)
	e.apply(withHealth(workload("web", "1", sleepForever, "Always"), script.Exit(1), 2), v1alpha1.TierContainer)
	e.reconcile("web") // starts
	for i := 0; i < 2; i++ {
		e.clock.Advance(time.Second)
		e.reconcile("web")
	}
	st := e.status("web")
	if st.Instances[0].Restarts != 1 || !strings.Contains(e.rec.reasons(), "web-0:Unhealthy web-0:Restarted") {
		t.Fatalf("restarts %d, events %s", st.Instances[0].Restarts, e.rec.reasons())
	}
}

func TestHealthCheckFailingBelowThreshold(t *testing.T) {
	e := newEnv(t)
	var observed []string
	e.c.o.ObserveProbeFailure = func(workload, instance string) { observed = append(observed, workload+"/"+instance) }
	e.apply(withHealth(workload("web", "1", sleepForever, "Always"), script.Exit(3), 3), v1alpha1.TierContainer)
	e.reconcile("web")
	e.clock.Advance(time.Second)
	after := e.reconcile("web")
	in := e.status("web").Instances[0]
	if in.Restarts != 0 || !strings.Contains(in.Message, "health check failing (1 of 3)") || after != time.Second {
		t.Fatalf("instance %+v, requeue %v", in, after)
	}
	if strings.Join(observed, ",") != "web/web-0" {
		t.Errorf("probe failures observed: %v, want the one of web-0", observed)
	}
}

func TestHealthyInstanceStays(t *testing.T) {
	e := newEnv(t)
	e.apply(withHealth(workload("web", "1", sleepForever, "Always"), script.Exit(0), 1), v1alpha1.TierContainer)
	e.reconcile("web")
	for i := 0; i < 3; i++ {
		e.clock.Advance(time.Second)
		e.reconcile("web")
	}
	if st := e.status("web"); st.Instances[0].Restarts != 0 || strings.Contains(e.rec.reasons(), "Unhealthy") {
		t.Fatalf("a healthy instance was restarted: %s", e.rec.reasons())
	}
}

// TestNetworkProbes checks the http and tcp probers against real listeners on loopback.
func TestNetworkProbes(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Error(w, "nope", http.StatusServiceUnavailable)
	}))
	defer ok.Close()
	ctx := context.Background()
	if err := httpProbe(ctx, ok.URL+"/healthz"); err != nil {
		t.Errorf("healthy endpoint: %v", err)
	}
	if err := httpProbe(ctx, ok.URL+"/down"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503 endpoint: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := tcpProbe(ctx, addr); err != nil {
		t.Errorf("open port: %v", err)
	}
	_ = l.Close()
	if err := tcpProbe(ctx, addr); err == nil {
		t.Error("closed port probed healthy")
	}
}

// TestUnhealthyVerdictHolds: once failureThreshold probes in a row failed, the instance is
// unhealthy until it is removed, even when the reconcile that found it so stopped before
// restarting it (the health checks run before the plan, the restart after other slots'
// starts): the next reconcile restarts it without waiting for another failed probe.
func TestUnhealthyVerdictHolds(t *testing.T) {
	e := newEnv(t)
	e.apply(withHealth(workload("web", "1", sleepForever, "Always"), script.Exit(1), 2), v1alpha1.TierContainer)
	e.reconcile("web") // starts
	rec, err := e.st.Get(context.Background(), v1alpha1.KindWorkload, "web")
	if err != nil {
		t.Fatal(err)
	}
	w, err := objects.Workload(rec)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.c.o.Drivers.ForTier(v1alpha1.TierContainer)
	if err != nil {
		t.Fatal(err)
	}
	var verdicts []bool
	for _, advance := range []time.Duration{time.Second, time.Second, 0} {
		e.clock.Advance(advance)
		restart, _, _ := e.c.checkHealth(context.Background(), w, d, "web-0", "")
		verdicts = append(verdicts, restart)
	}
	if got := fmt.Sprint(verdicts); got != "[false true true]" {
		t.Fatalf("restart verdicts of three checks %s, want [false true true]", got)
	}
	if err := e.c.restartRemove(context.Background(), observed{driver: d, status: runtime.Status{ID: "web-0", State: runtime.StateRunning}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.c.health["web-0"]; ok {
		t.Fatal("the health state of a removed instance was kept")
	}
}
