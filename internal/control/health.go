package control

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// probeTimeout bounds one health probe.
const probeTimeout = 2 * time.Second

// probeState is what the controller remembers of an instance's health checks.
type probeState struct {
	last     time.Time
	failures int32
	message  string
	// startedAt, until the first probe passes, is when the controller started the
	// instance, of tier: that probe ends its start-up.
	startedAt time.Time
	tier      v1alpha1.Tier
}

// checkHealth probes a running instance when its interval has passed. It reports whether the
// instance must be restarted (failureThreshold probes in a row failed) and how soon to look again.
func (c *Controller) checkHealth(ctx context.Context, w *v1alpha1.Workload, d runtime.Driver, id, ip string) (restart bool, again time.Duration, msg string) {
	h := w.Spec.Health
	interval := time.Duration(h.IntervalSeconds) * time.Second
	st := c.health[id]
	if st == nil {
		st = &probeState{}
		c.health[id] = st
	}
	if st.failures > 0 && st.failures >= h.FailureThreshold {
		// Found unhealthy by an earlier reconcile that ended before restarting it: the
		// verdict holds until the instance is removed (removeInstance forgets it).
		return true, interval, fmt.Sprintf("health check failed %d times in a row: %s", st.failures, st.message)
	}
	now := c.o.Clock()
	if !st.last.IsZero() && now.Sub(st.last) < interval {
		return false, interval - now.Sub(st.last), ""
	}
	st.last = now
	err := probe(ctx, h, d, id, ip)
	if err == nil {
		st.failures, st.message = 0, ""
		if !st.startedAt.IsZero() {
			c.observeStartup(st.tier, c.o.Clock().Sub(st.startedAt))
			st.startedAt = time.Time{}
		}
		return false, interval, ""
	}
	st.failures++
	st.message = err.Error()
	if c.o.ObserveProbeFailure != nil {
		c.o.ObserveProbeFailure(w.Metadata.Name, id)
	}
	if st.failures >= h.FailureThreshold {
		return true, interval, fmt.Sprintf("health check failed %d times in a row: %v", st.failures, err)
	}
	return false, interval, ""
}

// probe runs one health check of an instance.
func probe(ctx context.Context, h *v1alpha1.HealthCheck, d runtime.Driver, id, ip string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	switch {
	case h.HTTP != nil:
		if ip == "" {
			return fmt.Errorf("http probe: the instance has no address")
		}
		url := "http://" + net.JoinHostPort(ip, strconv.Itoa(int(h.HTTP.Port))) + h.HTTP.Path
		return httpProbe(ctx, url)
	case h.TCP != nil:
		if ip == "" {
			return fmt.Errorf("tcp probe: the instance has no address")
		}
		return tcpProbe(ctx, net.JoinHostPort(ip, strconv.Itoa(int(h.TCP.Port))))
	case h.Exec != nil:
		ex, ok := d.(runtime.Execer)
		if !ok {
			return fmt.Errorf("exec probe: the %s driver cannot run commands in instances", d.Name())
		}
		var out limited
		code, err := ex.Exec(ctx, id, h.Exec.Command, nil, &out, &out)
		if err != nil {
			return fmt.Errorf("exec probe: %w", err)
		}
		if code != 0 {
			return fmt.Errorf("exec probe %q exited with code %d: %s", strings.Join(h.Exec.Command, " "), code, strings.TrimSpace(out.String()))
		}
		return nil
	}
	return nil
}

func httpProbe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return fmt.Errorf("http probe: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("http probe: GET %s answered %s", url, resp.Status)
	}
	return nil
}

// probeClient never follows redirects (a 3xx is a healthy answer) and keeps no connections.
var probeClient = &http.Client{
	Transport:     &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func tcpProbe(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("tcp probe: %w", err)
	}
	return conn.Close()
}

// limited keeps the first KiB of a probe's output, for the event message.
type limited struct{ b []byte }

func (l *limited) Write(p []byte) (int, error) {
	if room := 1024 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (l *limited) String() string { return string(l.b) }
