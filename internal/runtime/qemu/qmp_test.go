package qemu

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveMonitor answers one connection on a unix socket as a QEMU monitor would, sending
// before first (events left from an earlier client, or anything else), then the greeting,
// then a return for every command, preceded by an event.
func serveMonitor(t *testing.T, before []string, greet bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmp.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		w := bufio.NewWriter(c)
		for _, line := range before {
			_, _ = w.WriteString(line + "\n")
		}
		if greet {
			_, _ = w.WriteString(`{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": ["oob"]}}` + "\n")
		}
		_ = w.Flush()
		r := bufio.NewReader(c)
		for {
			if _, err := r.ReadBytes('\n'); err != nil {
				return
			}
			_, _ = c.Write([]byte(`{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 0}}` + "\n" + `{"return": {}}` + "\n"))
		}
	}()
	return path
}

const staleEvent = `{"timestamp": {"seconds": 1795684230, "microseconds": 118542}, "event": "JOB_STATUS_CHANGE", "data": {"status": "concluded", "id": "backup"}}`

func TestMonitorHandshake(t *testing.T) {
	many := make([]string, maxStaleEvents+1)
	for i := range many {
		many[i] = staleEvent
	}
	for _, tc := range []struct {
		name    string
		before  []string
		greet   bool
		wantErr string
	}{
		{"greeting first", nil, true, ""},
		{"events an earlier client left, then the greeting", []string{staleEvent, staleEvent}, true, ""},
		{"something else first", []string{`{"return": {}}`}, true, "no QMP greeting"},
		{"not JSON", []string{"garbage"}, true, "bad greeting"},
		{"events without end", many, true, "no QMP greeting after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m, err := dialMonitor(ctx, serveMonitor(t, tc.before, tc.greet))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("dial: %v, want an error saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.close()
			if _, err := m.execute(ctx, "query-status", nil); err != nil {
				t.Errorf("a command after the handshake: %v", err)
			}
		})
	}
}

// TestMonitorHandshakeTimesOut: a monitor that never greets ends with the context.
func TestMonitorHandshakeTimesOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := dialMonitor(ctx, serveMonitor(t, nil, false)); err == nil {
		t.Fatal("a monitor that never greets: no error")
	}
}

// TestMonitorKeepsEventsBeforeReply: an event that comes before a command's reply (a
// hot-unplug's DEVICE_DELETED may come before device_del returns) is kept for waitEvent,
// and waitEvent for an event that never comes ends with the context.
func TestMonitorKeepsEventsBeforeReply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := dialMonitor(ctx, serveMonitor(t, nil, true))
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	if _, err := m.execute(ctx, "stop", nil); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Second)
	defer wcancel()
	if _, err := m.waitEvent(wctx, "STOP", nil); err != nil {
		t.Fatalf("the STOP event sent before stop's reply: %v", err)
	}
	wctx, wcancel = context.WithTimeout(ctx, 200*time.Millisecond)
	defer wcancel()
	if _, err := m.waitEvent(wctx, "DEVICE_DELETED", nil); err == nil {
		t.Fatal("an event that was never sent: no error")
	}
}
