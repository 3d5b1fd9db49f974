package compose

import (
	"math"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"strata.dev/strata/api/v1alpha1"
)

const testHint = `write ["CMD", "program", "arg", ...], ["CMD-SHELL", "command line"] or ["NONE"]`

// health reads healthcheck: a test that fetches a local http URL with curl or wget becomes an
// http probe, any other test an exec probe. A healthcheck without a test (the image's own)
// or with disable: true gives no probe.
func (b *builder) health() {
	n, p := b.get("healthcheck")
	hc, ok := b.r.mapping(n, p)
	if !ok || len(hc) == 0 {
		return
	}
	if dn := hc.get("disable"); dn != nil {
		if off, ok := b.r.boolean(dn, p.Child("disable")); ok && off {
			return
		}
	}
	tp := p.Child("test")
	tn := b.r.resolve(hc.get("test"))
	var h v1alpha1.HealthCheck
	switch {
	case isNull(tn):
	case tn.Kind == yaml.ScalarNode:
		if cmd, ok := b.r.text(tn, tp); ok && strings.TrimSpace(cmd) != "" {
			h.Exec = &v1alpha1.ExecProbe{Command: []string{"/bin/sh", "-c", cmd}}
		}
	case tn.Kind == yaml.SequenceNode:
		words, _ := b.r.strOrList(tn, tp)
		if len(words) == 0 {
			break
		}
		switch args := words[1:]; {
		case words[0] == "NONE":
			return
		case len(args) == 0 || (words[0] != "CMD" && words[0] != "CMD-SHELL"):
			b.r.errorf(tn, tp, testHint, "a test list starts with CMD, CMD-SHELL or NONE and then the command")
			return
		case words[0] == "CMD-SHELL":
			h.Exec = &v1alpha1.ExecProbe{Command: []string{"/bin/sh", "-c", strings.Join(args, " ")}}
		default:
			if probe, ok := httpProbe(args); ok {
				h.HTTP = probe
			} else {
				h.Exec = &v1alpha1.ExecProbe{Command: args}
			}
		}
	default:
		b.r.errorf(tn, tp, testHint, "expected a string or a list, got %s", describe(tn))
		return
	}
	ip := p.Child("interval")
	if s, at := b.r.strAt(hc.get("interval"), ip); at != nil {
		// Empty, as an unset variable leaves it (with a warning), is the default interval.
		if secs, ok := seconds(s); ok {
			h.IntervalSeconds = secs
		} else if strings.TrimSpace(s) != "" {
			b.r.errorf(at, ip, "write a duration such as 10s or 1m30s", "invalid interval %q", s)
		}
	}
	if n := hc.get("retries"); n != nil {
		if v, ok := b.r.integer(n, p.Child("retries"), 0, math.MaxInt32); ok {
			h.FailureThreshold = int32(v)
		}
	}
	if h.HTTP == nil && h.Exec == nil {
		return
	}
	b.w.Spec.Health = &h
	b.from("spec.health", tn, tp)
}

// seconds converts a duration to whole seconds, rounded up, at least 1.
func seconds(s string) (int32, bool) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 || d > math.MaxInt32*time.Second {
		return 0, false
	}
	secs := int64((d + time.Second - 1) / time.Second)
	return int32(max(secs, 1)), true
}

// httpProbe recognizes a test that fetches one local http URL with curl or wget, with no
// argument but flags (and /dev/null, where output goes).
func httpProbe(args []string) (*v1alpha1.HTTPProbe, bool) {
	if tool := path.Base(args[0]); tool != "curl" && tool != "wget" {
		return nil, false
	}
	raw := ""
	for _, a := range args[1:] {
		switch {
		case strings.HasPrefix(a, "http://"):
			if raw != "" {
				return nil, false
			}
			raw = a
		case strings.HasPrefix(a, "-") || a == "/dev/null":
		default:
			return nil, false
		}
	}
	u, err := url.Parse(raw)
	if raw == "" || err != nil || u.User != nil || u.Opaque != "" || !isLocal(u.Hostname()) {
		return nil, false
	}
	port := int64(80)
	if s := u.Port(); s != "" {
		if port, err = strconv.ParseInt(s, 10, 32); err != nil || port < 1 || port > 65535 {
			return nil, false
		}
	}
	return &v1alpha1.HTTPProbe{Path: u.RequestURI(), Port: int32(port)}, true
}

// isLocal reports whether a URL's host is the instance itself.
func isLocal(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && (a.IsLoopback() || a.IsUnspecified())
}
