package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

const busy = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: busy}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "while :; do :; done"]
  resources: {cpu: 500m, memory: 32Mi}
`

const busyVM = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: busyvm}
spec:
  isolation: vm
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
  resources: {memory: 192Mi}
`

// samples are the series of one scrape, by their text form without the value:
// `name{label="value",...}`.
type samples map[string]float64

// unixClient is an HTTP client of the daemon's unix socket (URLs: http://strata/PATH).
func (e *e2e) unixClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", e.socket)
		}}}
}

// scrape reads GET /metrics over the daemon's unix socket.
func (e *e2e) scrape() (samples, error) {
	c := e.unixClient(20 * time.Second)
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://strata/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET /metrics: %s: %s", resp.Status, b)
	}
	out := samples{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// instanceSeries is the name and labels of an instance metric as the daemon writes them.
func instanceSeries(name, instance, tier, workload string) string {
	return fmt.Sprintf(`%s{instance=%q,segment="default",tier=%q,workload=%q}`, name, instance, tier, workload)
}

// get returns the value of series in a fresh scrape, or an error when it is missing.
func (e *e2e) metric(series string) (float64, error) {
	s, err := e.scrape()
	if err != nil {
		return 0, err
	}
	v, ok := s[series]
	if !ok {
		return 0, fmt.Errorf("no %s in /metrics", series)
	}
	return v, nil
}

// TestDaemonMetrics scrapes the real daemon's /metrics while a busy container runs: its
// CPU counter rises, its memory is reported, a killed process shows as a restart, the
// daemon's own metrics are there, and the TLS listener wants a token for /metrics.
func TestDaemonMetrics(t *testing.T) {
	e := newE2E(t)
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	file := filepath.Join(e.dir, "busy.yaml")
	if err := os.WriteFile(file, []byte(busy), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", file)
	var pids map[string]int
	e.eventually("busy runs", 60*time.Second, func() (err error) {
		pids, err = e.running("busy", 1)
		return err
	})

	cpu := instanceSeries("strata_instance_cpu_seconds_total", "busy-0", "container", "busy")
	mem := instanceSeries("strata_instance_memory_bytes", "busy-0", "container", "busy")
	restarts := instanceSeries("strata_instance_restarts_total", "busy-0", "container", "busy")
	up := instanceSeries("strata_instance_up", "busy-0", "container", "busy")
	var first float64
	e.eventually("busy's usage is reported", 30*time.Second, func() (err error) {
		first, err = e.metric(cpu)
		return err
	})
	e.eventually("busy's CPU time rises", 30*time.Second, func() error {
		s, err := e.scrape()
		if err != nil {
			return err
		}
		if s[cpu] <= first {
			return fmt.Errorf("%s: %v, then %v", cpu, first, s[cpu])
		}
		if s[mem] <= 0 {
			return fmt.Errorf("%s = %v, want > 0", mem, s[mem])
		}
		return nil
	})
	s, err := e.scrape()
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]float64{
		restarts: 0, up: 1,
		`strata_workload_replicas_desired{workload="busy"}`:                        1,
		`strata_workload_replicas_running{workload="busy"}`:                        1,
		`strata_workload_info{segment="default",tier="container",workload="busy"}`: 1,
	} {
		if got, ok := s[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	for _, series := range []string{"strata_store_size_bytes", "strata_reconcile_queue_depth",
		"strata_reconcile_duration_seconds_count", `strata_api_requests_total{code="200",route="GET /metrics"}`} {
		if _, ok := s[series]; !ok {
			t.Errorf("no %s in /metrics", series)
		}
	}
	if s["strata_store_size_bytes"] <= 0 || s["strata_reconcile_duration_seconds_count"] <= 0 {
		t.Errorf("store size %v, reconciles %v: want both > 0", s["strata_store_size_bytes"], s["strata_reconcile_duration_seconds_count"])
	}

	e.checkHosts()
	e.eventually("the driver checks in /metrics", 15*time.Second, func() error {
		s, err := e.scrape()
		if err != nil {
			return err
		}
		for series, v := range s {
			if strings.HasPrefix(series, `strata_driver_ready{check="containerd",`) && v == 1 {
				return nil
			}
		}
		return fmt.Errorf("no strata_driver_ready{check=\"containerd\"} = 1 in /metrics")
	})
	e.checkHistory("busy", "busy-0", 0.2)

	// Kill the process: the restart shows in the counter, and in the event stream.
	restarted := e.watchSSE("workloads", func(ev sseEvent) bool {
		var w v1alpha1.Workload
		return ev.name == "MODIFIED" && json.Unmarshal(ev.data, &w) == nil && w.Metadata.Name == "busy" &&
			w.Status != nil && len(w.Status.Instances) == 1 && w.Status.Instances[0].Restarts == 1
	})
	if err := syscall.Kill(pids["busy-0"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-restarted:
	case <-time.After(60 * time.Second):
		t.Error("no MODIFIED event of busy with one restart in the event stream within 60 s")
	}
	e.eventually("the restart is counted", 60*time.Second, func() error {
		s, err := e.scrape()
		if err != nil {
			return err
		}
		if s[restarts] != 1 || s[up] != 1 {
			return fmt.Errorf("%s = %v, %s = %v", restarts, s[restarts], up, s[up])
		}
		return nil
	})

	e.tlsMetrics()
}

// tlsMetrics checks that /metrics on the TLS listener wants a token.
func (e *e2e) tlsMetrics() {
	e.t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		e.t.Log("curl not found: /metrics over TLS not checked")
		return
	}
	tokens, err := os.ReadFile(filepath.Join(e.dir, "data", "tls", "tokens"))
	if err != nil {
		e.t.Fatal(err)
	}
	var token string
	for _, line := range strings.Split(string(tokens), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			token = f[1]
			break
		}
	}
	code := func(header ...string) string {
		args := []string{"--net=/run/netns/" + e.netns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
			"--cacert", filepath.Join(e.dir, "data", "tls", "ca.crt")}
		for _, h := range header {
			args = append(args, "-H", h)
		}
		out, err := run("nsenter", append(args, "https://"+tlsAddr+"/metrics")...)
		if err != nil {
			e.t.Fatalf("curl /metrics over TLS: %v", err)
		}
		return out
	}
	if got := code(); got != "401" {
		e.t.Errorf("GET /metrics over TLS without a token: %s, want 401", got)
	}
	if got := code("Authorization: Bearer " + token); got != "200" {
		e.t.Errorf("GET /metrics over TLS with the admin token: %s, want 200", got)
	}
}

// TestDaemonVMMetrics scrapes a VM's usage: QEMU's CPU time rises while it boots and
// its resident memory is reported.
func TestDaemonVMMetrics(t *testing.T) {
	e := newE2E(t)
	kdir := vmEnv(t, e)
	e.extraArgs = []string{"--guest-kernel-dir", kdir}
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	file := filepath.Join(e.dir, "busyvm.yaml")
	if err := os.WriteFile(file, []byte(busyVM), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("apply", "-f", file)
	e.eventually("the VM runs", 120*time.Second, func() error {
		_, err := e.running("busyvm", 1)
		return err
	})
	cpu := instanceSeries("strata_instance_cpu_seconds_total", "busyvm-0", "vm", "busyvm")
	mem := instanceSeries("strata_instance_memory_bytes", "busyvm-0", "vm", "busyvm")
	var first float64
	e.eventually("the VM's usage is reported", 30*time.Second, func() (err error) {
		first, err = e.metric(cpu)
		return err
	})
	e.eventually("the VM's CPU time rises", 60*time.Second, func() error {
		s, err := e.scrape()
		if err != nil {
			return err
		}
		if s[cpu] <= first || s[mem] < 16<<20 {
			return fmt.Errorf("%s: %v then %v; %s = %v (want > 16 MiB)", cpu, first, s[cpu], mem, s[mem])
		}
		return nil
	})
}
