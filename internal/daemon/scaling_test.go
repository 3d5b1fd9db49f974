package daemon_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/daemon"
)

// burner burns its CPU limit (200m) while /ctl/burn exists. /ctl is a volume: each replica
// slot has its own directory under DATA_DIR/volumes/burner/ctl/SLOT, which the test fills.
const burner = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: burner}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; while :; do if [ -e /ctl/burn ]; then :; else sleep 1; fi; done"]
  resources: {cpu: 200m, memory: 32Mi}
  volumes: [{name: ctl, mountPath: /ctl}]
  scaling: {min: 1, max: 3, targetCPUPercent: 50, scaleInCooldownSeconds: 30}
`

// TestDaemonScaling runs the real daemon's scaler against real load: while the burner's
// instances burn their CPU limit (utilization 100% against a target of 50%) the scaler adds
// replicas, with Scaled events, status.scaling, metrics, describe and the dashboard saying
// so; once the load stops it scales back in to one replica, not before the 30 s cooldown.
func TestDaemonScaling(t *testing.T) {
	e := newE2E(t)
	t.Setenv(daemon.ScalerIntervalEnv, "2s") // decide every 2 s instead of 15 s
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	slots := filepath.Join(e.dir, "data", "volumes", "burner", "ctl")
	burn := func(on bool) {
		t.Helper()
		for slot := range 3 {
			f := filepath.Join(slots, strconv.Itoa(slot), "burn")
			if !on {
				if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				continue
			}
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	burn(true) // every slot burns from its start
	file := filepath.Join(e.dir, "burner.yaml")
	if err := os.WriteFile(file, []byte(burner), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", file)
	applied := time.Now()

	// Load: the scaler adds replicas.
	var out int
	e.eventually("the scaler adds replicas", 120*time.Second, func() error {
		w := e.workload("burner")
		if w.Status == nil || w.Status.Scaling == nil || w.Status.Scaling.Replicas < 2 {
			return fmt.Errorf("status.scaling %+v", scalingOf(w))
		}
		out = int(w.Status.Scaling.Replicas)
		_, err := e.running("burner", out)
		return err
	})
	t.Logf("scaled out to %d replicas %s after apply", out, time.Since(applied).Round(time.Second))
	w := e.workload("burner")
	ld := w.Status.Scaling.LastDecision
	if ld == nil || ld.To < 2 || ld.Policy != v1alpha1.ScalingReactive || ld.DemandCores <= 0 || !strings.Contains(ld.Reason, "against a target of 0.10 (50% of 200m)") {
		t.Errorf("last decision %+v", ld)
	}
	if *w.Spec.Replicas != 1 {
		t.Errorf("spec.replicas became %d: the scaler writes status.scaling only", *w.Spec.Replicas)
	}
	if ev := e.must("events"); !strings.Contains(ev, "Scaled") || !strings.Contains(ev, "scaled 1 -> ") {
		t.Errorf("no Scaled event:\n%s", ev)
	}
	e.eventually("the metrics tell the scaled count", 30*time.Second, func() error {
		s, err := e.scrape()
		if err != nil {
			return err
		}
		want := float64(e.workload("burner").Status.Scaling.Replicas)
		if got := s[`strata_workload_replicas_desired{workload="burner"}`]; got != want {
			return fmt.Errorf("strata_workload_replicas_desired %v, want %v", got, want)
		}
		if n := s[`strata_scaling_decisions_total{direction="out",workload="burner"}`]; n < 1 {
			return fmt.Errorf("strata_scaling_decisions_total{direction=\"out\"} = %v", n)
		}
		return nil
	})
	desc := e.must("describe", "workload", "burner")
	for _, want := range []string{"Scaling:", "Policy:", "reactive", "1 / 3", "50% of cpu 200m", "Scale-in cooldown:", "Reason:", "scaled 1 -> "} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe workload lacks %q:\n%s", want, desc)
		}
	}
	e.checkScalingPanel(t, "burner")

	// No load: back to one replica, after the cooldown.
	burn(false)
	stopped := time.Now()
	e.eventually("the scaler scales back in to 1", 150*time.Second, func() error {
		w := e.workload("burner")
		if w.Status.Scaling == nil || w.Status.Scaling.Replicas != 1 {
			return fmt.Errorf("status.scaling %+v", scalingOf(w))
		}
		_, err := e.running("burner", 1)
		return err
	})
	after := time.Since(stopped)
	t.Logf("scaled back in to 1 replica %s after the load stopped", after.Round(time.Second))
	if after < 30*time.Second {
		t.Errorf("scaled in %s after the load stopped: within the 30 s cooldown", after.Round(time.Second))
	}
	if ld := e.workload("burner").Status.Scaling.LastDecision; ld == nil || ld.To != 1 || ld.From < 2 {
		t.Errorf("last decision %+v", ld)
	}
	s, err := e.scrape()
	if err != nil || s[`strata_scaling_decisions_total{direction="in",workload="burner"}`] < 1 {
		t.Errorf("no scale-in counted in /metrics (%v)", err)
	}
	// Every replica's start was measured: the scaler's lead time comes from these.
	if n, sum := s[`strata_instance_startup_seconds_count{tier="container"}`], s[`strata_instance_startup_seconds_sum{tier="container"}`]; n < 3 || sum <= 0 {
		t.Errorf("container start-ups measured: %v, %v s in all; want the 3 replicas' at least", n, sum)
	} else {
		t.Logf("container start-up measured here: %.3f s on average over %v starts", sum/n, n)
	}
	e.must("delete", "workload", "burner", "--timeout", "60s")
}

func scalingOf(w v1alpha1.Workload) any {
	if w.Status == nil || w.Status.Scaling == nil {
		return nil
	}
	return *w.Status.Scaling
}

// checkScalingPanel opens the dashboard when Chromium is there and checks that the
// workload's panel shows the scaler's count.
func (e *e2e) checkScalingPanel(t *testing.T, name string) {
	t.Helper()
	chromium := ""
	for _, p := range []string{"/usr/lib/chromium/chromium", "chromium"} {
		if path, err := exec.LookPath(p); err == nil {
			chromium = path
			break
		}
	}
	if chromium == "" {
		t.Log("chromium not found: the dashboard's scaling block is not checked")
		return
	}
	token, err := client.ReadTokenFile(filepath.Join(e.dir, "data", "tls", "tokens"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, _ := startBrowser(t, chromium, e.netns)
	navigate(t, ctx, "https://"+tlsAddr+"/ui/#token="+token)
	waitFor(t, ctx, "the workload listed", fmt.Sprintf(`!!document.querySelector('#wl-list tr[data-workload=%q]')`, name))
	eval[bool](t, ctx, fmt.Sprintf(`document.querySelector('#wl-list tr[data-workload=%q]').dispatchEvent(new MouseEvent('click', {bubbles: true}))`, name))
	waitFor(t, ctx, "the panel's scaling block with the scale-out", `(() => {
		const b = document.querySelector('#panel [data-scaling]');
		const last = b && b.querySelector('[data-decision]');
		return !!b && Number(b.dataset.scaling) >= 2 && b.dataset.policy === 'reactive' && !!last &&
			/^[12]->[23]$/.test(last.dataset.decision) && /against a target of 0.10/.test(last.textContent);
	})()`)
}
