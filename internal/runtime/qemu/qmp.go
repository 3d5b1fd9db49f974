package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// monitor is a connection to a QEMU Machine Protocol socket: JSON objects, one
// per line; the server greets, the client negotiates capabilities, then each
// command gets a "return" or an "error", with asynchronous "event" objects
// interleaved. QEMU serves one client per monitor at a time, so the driver
// connects per operation and closes right after.
type monitor struct {
	conn net.Conn
	r    *bufio.Reader
	// events holds the events read while waiting for a command's reply, for
	// waitEvent; at most maxStaleEvents are kept.
	events []qmpEvent
}

// qmpEvent is an asynchronous event QEMU sent.
type qmpEvent struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// qmpError is an error QEMU returned for a command.
type qmpError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *qmpError) Error() string { return e.Class + ": " + e.Desc }

// dialMonitor connects to the monitor at path and negotiates capabilities.
func dialMonitor(ctx context.Context, path string) (*monitor, error) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	m := &monitor{conn: conn, r: bufio.NewReader(conn)}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	err = m.greeting()
	if err == nil {
		_, err = m.execute(ctx, "qmp_capabilities", nil)
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("QMP handshake on %s: %w", path, err)
	}
	return m, nil
}

// maxStaleEvents bounds the events a new connection may find before the greeting.
const maxStaleEvents = 64

// greeting reads the server's greeting. Events that QEMU emitted while the previous client
// was leaving (a block job's status changes, say) may still sit in the monitor's output
// and reach the next client first: those are skipped.
func (m *monitor) greeting() error {
	for range maxStaleEvents {
		line, err := m.r.ReadBytes('\n')
		if err != nil {
			return err
		}
		var msg struct {
			QMP   *json.RawMessage `json:"QMP"`
			Event string           `json:"event"`
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			return fmt.Errorf("bad greeting %.80q: %w", line, err)
		}
		switch {
		case msg.QMP != nil:
			return nil
		case msg.Event == "":
			return fmt.Errorf("no QMP greeting: %.80s", line)
		}
	}
	return fmt.Errorf("no QMP greeting after %d events", maxStaleEvents)
}

// execute runs one command and returns its "return" value.
func (m *monitor) execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	stop := context.AfterFunc(ctx, func() { _ = m.conn.SetDeadline(time.Now()) })
	defer stop()
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := m.conn.Write(append(data, '\n')); err != nil {
		return nil, m.ctxErr(ctx, err)
	}
	return m.reply(ctx, command)
}

// reply reads the reply to command, keeping the events that come first.
func (m *monitor) reply(ctx context.Context, command string) (json.RawMessage, error) {
	stop := context.AfterFunc(ctx, func() { _ = m.conn.SetDeadline(time.Now()) })
	defer stop()
	for {
		line, err := m.r.ReadBytes('\n')
		if err != nil {
			return nil, m.ctxErr(ctx, err)
		}
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *qmpError       `json:"error"`
			Event  string          `json:"event"`
			Data   json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("QMP %s: bad reply %.80q: %w", command, line, err)
		}
		switch {
		case resp.Event != "":
			// Asynchronous: kept for waitEvent (a hot-unplug's DEVICE_DELETED
			// may come before device_del's reply).
			if len(m.events) < maxStaleEvents {
				m.events = append(m.events, qmpEvent{Event: resp.Event, Data: resp.Data})
			}
			continue
		case resp.Error != nil:
			return nil, fmt.Errorf("QMP %s: %w", command, resp.Error)
		default:
			return resp.Return, nil
		}
	}
}

// waitEvent returns the data of the first event called name for which match
// (may be nil) holds, among those already read and those that follow.
func (m *monitor) waitEvent(ctx context.Context, name string, match func(json.RawMessage) bool) (json.RawMessage, error) {
	for i, e := range m.events {
		if e.Event == name && (match == nil || match(e.Data)) {
			m.events = append(m.events[:i], m.events[i+1:]...)
			return e.Data, nil
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = m.conn.SetDeadline(time.Now()) })
	defer stop()
	for {
		line, err := m.r.ReadBytes('\n')
		if err != nil {
			return nil, m.ctxErr(ctx, err)
		}
		var e qmpEvent
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("QMP: bad event %.80q: %w", line, err)
		}
		if e.Event == name && (match == nil || match(e.Data)) {
			return e.Data, nil
		}
	}
}

func (m *monitor) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (m *monitor) close() error { return m.conn.Close() }

// runQMP connects to instance id's monitor, runs one command and decodes its
// result into out (may be nil).
func (d *Driver) runQMP(ctx context.Context, id, command string, args, out any) error {
	m, err := dialMonitor(ctx, d.path(id, qmpSocket))
	if err != nil {
		return err
	}
	defer m.close()
	ret, err := m.execute(ctx, command, args)
	if err != nil {
		return err
	}
	if out != nil && len(ret) > 0 {
		return json.Unmarshal(ret, out)
	}
	return nil
}

// vmStatus asks QEMU for the guest's run state ("running", "paused",
// "inmigrate", "postmigrate", "shutdown", ...).
func (d *Driver) vmStatus(ctx context.Context, id string) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	if err := d.runQMP(ctx, id, "query-status", nil, &st); err != nil {
		return "", err
	}
	if st.Status == "" {
		return "", errors.New("QMP query-status: no status")
	}
	return st.Status, nil
}
