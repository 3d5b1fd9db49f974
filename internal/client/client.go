// Package client talks to the daemon's API: over its unix socket by default, or over TLS with
// a bearer token. Errors from the daemon come back as *APIError with the daemon's reason.
//
// The client shares only the API's types with the daemon (api/v1alpha1 for objects,
// api/wire for routes, Status and request bodies); it imports none of the daemon's
// packages, which internal/archtest checks over the whole dependency closure.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"strata.dev/strata/api/wire"
)

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = "/run/strata/strata.sock"

// Client is a connection to one daemon.
type Client struct {
	http *http.Client
	base string
	hint string // what to check when the daemon cannot be reached
}

// NewUnix returns a client for the daemon listening on the unix socket path.
func NewUnix(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{http: &http.Client{Transport: tr}, base: "http://strata",
		hint: "is `strata serve` running? --socket or STRATA_SOCKET selects another daemon"}
}

// APIError is an error answer of the daemon.
type APIError struct {
	wire.Status
}

func (e *APIError) Error() string {
	if len(e.Details) > 0 {
		return strings.Join(e.Details, "\n")
	}
	return e.Message
}

// Reason returns the daemon's reason for err (NotFound, Conflict, Invalid, ...) or "".
func Reason(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return ""
}

// IsNotFound reports whether err says the object does not exist.
func IsNotFound(err error) bool { return Reason(err) == wire.ReasonNotFound }

// ErrUnreachable wraps errors connecting to the daemon.
var ErrUnreachable = errors.New("the strata daemon is not reachable")

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/yaml")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w (%s)", ErrUnreachable, err, c.hint)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode the daemon's answer to %s %s: %w", method, path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var st wire.Status
	if json.Unmarshal(b, &st) != nil || st.Kind != "Status" {
		st = wire.Status{Code: resp.StatusCode, Reason: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(b))}
	}
	return &APIError{st}
}

func objPath(plural, name string) string {
	p := wire.Prefix + plural
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p
}

// Get reads one object into out.
func (c *Client) Get(ctx context.Context, plural, name string, out any) error {
	return c.do(ctx, http.MethodGet, objPath(plural, name), nil, nil, out)
}

// List reads every object of a kind into out (a wire.List-shaped value).
func (c *Client) List(ctx context.Context, plural string, out any) error {
	return c.do(ctx, http.MethodGet, objPath(plural, ""), nil, nil, out)
}

// Create stores a new object given as a YAML or JSON document; out receives the stored object.
func (c *Client) Create(ctx context.Context, plural string, doc []byte, force bool, out any) error {
	return c.do(ctx, http.MethodPost, objPath(plural, ""), forceQuery(force), doc, out)
}

// Update replaces an object's spec; out receives the stored object.
func (c *Client) Update(ctx context.Context, plural, name string, doc []byte, force bool, out any) error {
	return c.do(ctx, http.MethodPut, objPath(plural, name), forceQuery(force), doc, out)
}

// Delete removes an object. A workload is first marked for deletion and removed by the
// daemon once its instances are gone; force removes it at once and leaves its instances to
// the daemon's clean-up.
func (c *Client) Delete(ctx context.Context, plural, name string, force bool) error {
	return c.do(ctx, http.MethodDelete, objPath(plural, name), forceQuery(force), nil, nil)
}

func forceQuery(force bool) url.Values {
	if !force {
		return nil
	}
	return url.Values{"force": {"true"}}
}

// Watch streams changes of a kind from resourceVersion rv ("" = from now) until ctx ends,
// calling fn for each; fn's error ends the watch and is returned.
func (c *Client) Watch(ctx context.Context, plural, rv string, fn func(eventType string, object json.RawMessage) error) error {
	q := url.Values{"watch": {"true"}}
	if rv != "" {
		q.Set("resourceVersion", rv)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+objPath(plural, "")+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var ev struct {
			Type   string          `json:"type"`
			Object json.RawMessage `json:"object"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("decode watch event: %w", err)
		}
		if ev.Type == "ERROR" {
			var st wire.Status
			_ = json.Unmarshal(ev.Object, &st)
			return &APIError{st}
		}
		if err := fn(ev.Type, ev.Object); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}

// Stream sends a request to a path below the API prefix and returns the response body for
// the caller to read and close; an error answer is returned as *APIError.
func (c *Client) Stream(ctx context.Context, method, path string, query map[string]string, body io.Reader) (io.ReadCloser, error) {
	q := url.Values{}
	for k, v := range query {
		if v != "" {
			q.Set(k, v)
		}
	}
	u := c.base + wire.Prefix + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (%s)", ErrUnreachable, err, c.hint)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp.Body, nil
}

// Snapshot takes a snapshot of a workload (name "" lets the daemon pick one from the
// time); out receives the Snapshot.
func (c *Client) Snapshot(ctx context.Context, workload, name string, memory bool, out any) error {
	body, err := json.Marshal(wire.SnapshotRequest{Name: name, Memory: memory})
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, objPath("workloads", workload)+"/snapshots", nil, body, out)
}

// RestoreSnapshot puts a workload's snapshot back; out receives the Snapshot.
func (c *Client) RestoreSnapshot(ctx context.Context, workload, name string, out any) error {
	return c.do(ctx, http.MethodPost, objPath("workloads", workload)+"/snapshots/"+url.PathEscape(name)+"/restore", nil, nil, out)
}

// DeleteSnapshot removes a workload's snapshot and its files.
func (c *Client) DeleteSnapshot(ctx context.Context, workload, name string) error {
	return c.do(ctx, http.MethodDelete, objPath("workloads", workload)+"/snapshots/"+url.PathEscape(name), nil, nil, nil)
}
