package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
)

// checkHosts checks the daemon's report about its machine: `get hosts -o json`, the
// heartbeat moving on, describe host, and /readyz.
func (e *e2e) checkHosts() {
	e.t.Helper()
	var list struct {
		Items []v1alpha1.HostObject `json:"items"`
	}
	e.eventually("the host counts the running instance", 30*time.Second, func() error {
		if err := json.Unmarshal([]byte(e.must("get", "hosts", "-o", "json")), &list); err != nil {
			return err
		}
		if len(list.Items) != 1 || list.Items[0].Status == nil {
			return fmt.Errorf("hosts %+v, want this one with a status", list.Items)
		}
		if st := list.Items[0].Status; st.Instances < 1 {
			return fmt.Errorf("the host counts %d running instances", st.Instances)
		}
		return nil
	})
	h := list.Items[0]
	st := h.Status
	name, _ := os.Hostname()
	if h.Kind != "Host" || h.Metadata.Name != strings.ToLower(name) {
		e.t.Errorf("host %s/%s, want Host/%s", h.Kind, h.Metadata.Name, strings.ToLower(name))
	}
	if !st.Ready || st.HeartbeatSeconds != 10 || time.Since(st.LastHeartbeatTime) > 30*time.Second {
		e.t.Errorf("host ready %v, heartbeat every %ds, last %v: want ready, 10 s, recent", st.Ready, st.HeartbeatSeconds, st.LastHeartbeatTime)
	}
	if st.Capacity.CPU.Value() < 1 || st.Capacity.Memory.Value() < 256<<20 || st.Kernel == "" {
		e.t.Errorf("capacity %v cpu, %v memory, kernel %q: want this machine's", st.Capacity.CPU.String(), st.Capacity.Memory.String(), st.Kernel)
	}
	if want := resource.MustParse("500m"); st.Allocated.CPU.Cmp(want) < 0 {
		e.t.Errorf("allocated cpu %s, want at least busy's 500m", st.Allocated.CPU.String())
	}
	checks := map[string]v1alpha1.DriverStatus{}
	for _, d := range st.Drivers {
		checks[d.Name] = d
	}
	for _, name := range []string{"containerd", "runc"} {
		if c, ok := checks[name]; !ok || !c.Ready || c.Message == "" {
			e.t.Errorf("driver check %s: %+v, want ready with a message", name, c)
		}
	}
	if c := checks["containerd"]; !strings.Contains(c.Message, "containerd") {
		e.t.Errorf("containerd check says %q, want its version and address", c.Message)
	}
	if _, ok := checks["qemu"]; !ok {
		e.t.Errorf("no qemu entry among the driver checks %v: a missing VM tier must be reported too", st.Drivers)
	}
	// The heartbeat moves on.
	first := st.LastHeartbeatTime
	e.eventually("the next heartbeat", 25*time.Second, func() error {
		var h v1alpha1.HostObject
		if err := json.Unmarshal([]byte(e.must("get", "host", strings.ToLower(name), "-o", "json")), &h); err != nil {
			return err
		}
		if !h.Status.LastHeartbeatTime.After(first) {
			return fmt.Errorf("heartbeat still at %v", first)
		}
		return nil
	})
	table := e.must("get", "hosts")
	if !strings.Contains(table, strings.ToLower(name)) || !strings.Contains(table, "Ready") {
		e.t.Errorf("get hosts:\n%s\nwant this host, Ready", table)
	}
	desc := e.must("describe", "host", strings.ToLower(name))
	for _, want := range []string{"Drivers:", "containerd", "runc", "Heartbeat:"} {
		if !strings.Contains(desc, want) {
			e.t.Errorf("describe host lacks %q:\n%s", want, desc)
		}
	}
	code, body := e.httpGet("/readyz?verbose", nil)
	if code != http.StatusOK || !strings.Contains(body, "[+] containerd: containerd") || !strings.Contains(body, "[+] store") {
		e.t.Errorf("/readyz?verbose: %d\n%s\nwant 200 listing containerd and the store", code, body)
	}
}

// checkHistory waits for two samples of instance in the workload's history, the latest
// using at least minCores.
func (e *e2e) checkHistory(workload, instance string, minCores float64) {
	e.t.Helper()
	e.eventually(workload+"'s usage history", 45*time.Second, func() error {
		code, body := e.httpGet("/apis/strata.dev/v1alpha1/workloads/"+workload+"/history", nil)
		if code != http.StatusOK {
			return fmt.Errorf("history: %d %s", code, body)
		}
		var h v1alpha1.UsageHistory
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			return err
		}
		if h.IntervalSeconds != 10 || len(h.Instances) != 1 || h.Instances[0].Instance != instance {
			return fmt.Errorf("history %+v, want %s at 10 s", h, instance)
		}
		pts := h.Instances[0].Points
		if len(pts) < 2 {
			return fmt.Errorf("%d points so far", len(pts))
		}
		if last := pts[len(pts)-1]; last.CPUCores < minCores || last.MemoryBytes <= 0 {
			return fmt.Errorf("latest point %+v, want at least %.1f cores and some memory", last, minCores)
		}
		return nil
	})
	if code, _ := e.httpGet("/apis/strata.dev/v1alpha1/workloads/nope/history", nil); code != http.StatusNotFound {
		e.t.Errorf("history of a workload that does not exist: %d, want 404", code)
	}
}

// httpGet sends GET path over the unix socket.
func (e *e2e) httpGet(path string, header http.Header) (int, string) {
	e.t.Helper()
	c := e.unixClient(20 * time.Second)
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, "http://strata"+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// sseEvent is one Server-Sent Event of a watch.
type sseEvent struct {
	name, id string
	data     []byte
}

// watchSSE watches resource as Server-Sent Events from now on, and closes the returned
// channel when match accepts an event. The stream ends with the test.
func (e *e2e) watchSSE(resource string, match func(sseEvent) bool) <-chan struct{} {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	c := e.unixClient(0)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://strata/apis/strata.dev/v1alpha1/"+resource+"?watch=1", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	res, err := c.Do(req) //nolint:bodyclose // the reading goroutine below closes it
	if err != nil {
		e.t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		e.t.Errorf("watch with Accept: text/event-stream answered %q", ct)
	}
	done := make(chan struct{})
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		var cur sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.name != "" && match(cur) {
					close(done)
					return
				}
				cur = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				cur.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				cur.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				cur.data = []byte(strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	return done
}
