package compose

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"strata.dev/strata/api/v1alpha1"
)

// maxRange bounds the ports one range (9000-9099) may expand to.
const maxRange = 100

const (
	portHint   = `write "CONTAINER", "HOST:CONTAINER" or "IP:HOST:CONTAINER", each optionally a range and /udp`
	exposeHint = `write a container port such as "3000", "8000-8010" or "53/udp"`
)

// ports reads ports (short and long syntax) and expose into spec.ports.
func (b *builder) ports() {
	n, p := b.get("ports")
	items, _ := b.r.list(n, p)
	for i, item := range items {
		ip := p.Index(i)
		v := b.r.resolve(item)
		switch {
		case isNull(v):
		case v.Kind == yaml.ScalarNode:
			text, ok := b.r.text(v, ip)
			if !ok {
				continue
			}
			ports, err := parsePorts(text)
			if err != nil {
				b.r.errorf(v, ip, portHint, "%v", err)
				continue
			}
			for _, port := range ports {
				b.addPort(port, v, ip)
			}
		case v.Kind == yaml.MappingNode:
			b.longPort(v, ip)
		default:
			b.r.errorf(v, ip, portHint+", or a mapping with target and published", "expected a string or a mapping, got %s", describe(v))
		}
	}
	n, p = b.get("expose")
	items, _ = b.r.list(n, p)
	for i, item := range items {
		ip := p.Index(i)
		v := b.r.scalar(item, ip, "a port", exposeHint)
		if v == nil {
			continue
		}
		text, ok := b.r.text(v, ip)
		if !ok {
			continue
		}
		ports, err := parseExpose(text)
		if err != nil {
			b.r.errorf(v, ip, exposeHint, "%v", err)
			continue
		}
		for _, port := range ports {
			b.addPort(port, v, ip)
		}
	}
}

// longPort reads {target, published, protocol}.
func (b *builder) longPort(n *yaml.Node, p *field.Path) {
	f, _ := b.r.mapping(n, p)
	target := f.get("target")
	if isNull(b.r.resolve(target)) {
		b.r.errorf(n, p.Child("target"), "give the container port as target", "a port needs a target")
		return
	}
	port, ok := b.r.integer(target, p.Child("target"), 1, 65535)
	if !ok {
		return
	}
	out := v1alpha1.Port{Port: int32(port), Protocol: v1alpha1.ProtocolTCP}
	if s, at := b.r.strAt(f.get("published"), p.Child("published")); at != nil && s != "" {
		lo, _, err := portRange(s)
		if err != nil {
			b.r.errorf(at, p.Child("published"), "write a host port such as 8080", "%v", err)
			return
		}
		out.Publish = lo
	}
	if s, at := b.r.strAt(f.get("protocol"), p.Child("protocol")); at != nil {
		proto, err := protocol(s)
		if err != nil {
			b.r.errorf(at, p.Child("protocol"), "use tcp or udp", "%v", err)
			return
		}
		out.Protocol = proto
	}
	b.addPort(out, n, p)
}

// addPort adds a port unless it is listed already. strata publishes a container port on at
// most one host port: a second, different host port for it is an error.
func (b *builder) addPort(port v1alpha1.Port, n *yaml.Node, p *field.Path) {
	if !b.r.spend(n) {
		return
	}
	ports := b.w.Spec.Ports
	key := fmt.Sprintf("%d/%s", port.Port, port.Protocol)
	if i, ok := b.portAt[key]; ok {
		have := &ports[i]
		switch {
		case port.Publish == 0 || port.Publish == have.Publish:
		case have.Publish == 0:
			have.Publish = port.Publish
			b.from("spec.ports["+strconv.Itoa(i)+"]", n, p)
		default:
			b.r.errorf(n, p, "strata publishes a container port on one host port: keep one of the mappings",
				"container port %d/%s is published on host ports %d and %d", port.Port, port.Protocol, have.Publish, port.Publish)
		}
		return
	}
	b.portAt[key] = len(ports)
	b.from("spec.ports["+strconv.Itoa(len(ports))+"]", n, p)
	b.w.Spec.Ports = append(b.w.Spec.Ports, port)
}

// parsePorts parses the short syntax [[IP:][HOST[-HOST]]:]CONTAINER[-CONTAINER][/PROTOCOL].
// IPv6 addresses are written in brackets ([::1]:8080:80). A host range published for one
// container port publishes it on the range's first port.
func parsePorts(s string) ([]v1alpha1.Port, error) {
	spec := s
	proto := v1alpha1.ProtocolTCP
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		var err error
		if proto, err = protocol(s[i+1:]); err != nil {
			return nil, err
		}
		s = s[:i]
	}
	var host, container string
	if rest, ok := strings.CutPrefix(s, "["); ok {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return nil, fmt.Errorf("invalid port %q: unclosed [ around the IP address", spec)
		}
		rest = strings.TrimPrefix(rest[end+1:], ":")
		if host, container, ok = strings.Cut(rest, ":"); !ok {
			return nil, fmt.Errorf("invalid port %q: an IP address needs HOST:CONTAINER after it", spec)
		}
	} else {
		parts := strings.Split(s, ":")
		container = parts[len(parts)-1]
		if len(parts) > 1 {
			host = parts[len(parts)-2]
		}
	}
	cLo, cHi, err := portRange(container)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q: %w", spec, err)
	}
	count := int(cHi-cLo) + 1
	if count > maxRange {
		return nil, fmt.Errorf("invalid port %q: the range holds %d ports, more than %d", spec, count, maxRange)
	}
	var hLo, hHi int32
	if host != "" {
		if hLo, hHi, err = portRange(host); err != nil {
			return nil, fmt.Errorf("invalid host port in %q: %w", spec, err)
		}
		if hHi-hLo != cHi-cLo && cHi != cLo {
			return nil, fmt.Errorf("invalid port %q: the host and container ranges differ in length", spec)
		}
	}
	out := make([]v1alpha1.Port, 0, count)
	for i := range int32(count) {
		port := v1alpha1.Port{Port: cLo + i, Protocol: proto}
		if host != "" {
			port.Publish = hLo
			if cHi != cLo {
				port.Publish = hLo + i
			}
		}
		out = append(out, port)
	}
	return out, nil
}

// parseExpose parses an exposed port: PORT[-PORT][/PROTOCOL].
func parseExpose(s string) ([]v1alpha1.Port, error) {
	if strings.Contains(s, ":") {
		return nil, fmt.Errorf("invalid exposed port %q: expose takes container ports only", s)
	}
	return parsePorts(s)
}

// portRange parses PORT or PORT-PORT.
func portRange(s string) (lo, hi int32, err error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if lo, err = portNumber(a); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = portNumber(b); err != nil {
			return 0, 0, err
		}
		if hi < lo {
			return 0, 0, fmt.Errorf("the range %s ends before it starts", s)
		}
	}
	return lo, hi, nil
}

func portNumber(s string) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 1 || n > 65535 {
		if s == "" {
			return 0, errors.New("a port number is missing")
		}
		return 0, fmt.Errorf("%q is not a port number between 1 and 65535", s)
	}
	return int32(n), nil
}

// protocol accepts tcp and udp, in any case; empty means tcp.
func protocol(s string) (v1alpha1.Protocol, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "tcp":
		return v1alpha1.ProtocolTCP, nil
	case "udp":
		return v1alpha1.ProtocolUDP, nil
	}
	return "", fmt.Errorf("unsupported protocol %q: strata supports tcp and udp", s)
}
