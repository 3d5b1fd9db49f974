package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/nftables"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/control"
	"strata.dev/strata/internal/netseg"
	"strata.dev/strata/internal/netseg/dns"
	"strata.dev/strata/internal/netseg/policy"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/server"
	"strata.dev/strata/internal/store"
)

// network is the host side of segments for the controllers: the network manager's bridges
// and attachments, the nftables policy and the name server. Containers and sandboxes get a
// network namespace and the segment's resolv.conf, VMs a tap and the gateway as resolver.
type network struct {
	m     *netseg.Manager
	names *dns.Server
	store *store.Store
	log   *slog.Logger
	// resolvDir holds one resolv.conf per segment, mounted into containers.
	resolvDir string

	mu      sync.Mutex
	applied string // digest of the ruleset last applied
}

func newNetwork(m *netseg.Manager, st *store.Store, dataDir string, log *slog.Logger) (*network, error) {
	dir := filepath.Join(dataDir, "network", "resolv")
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // the files are mounted read-only into instances, which may run as any user
		return nil, err
	}
	return &network{m: m, store: st, log: log, resolvDir: dir, names: dns.New(dns.Options{Logger: log})}, nil
}

func (n *network) close() error { return n.names.Close() }

// Attach implements control.Network. A segment that a Segment object declares is set up
// with its subnet; any other is set up on first use with one from the pool.
func (n *network) Attach(ctx context.Context, segment, id string, vm bool) (control.Attachment, error) {
	subnet := ""
	if rec, err := n.store.Get(ctx, v1alpha1.KindSegment, segment); err == nil {
		if sg, err := objects.Segment(rec); err == nil {
			subnet = sg.Spec.Subnet
		}
	}
	info, err := n.EnsureSegment(ctx, segment, subnet)
	if err != nil {
		return control.Attachment{}, err
	}
	gw := netip.MustParseAddr(info.Gateway)
	if vm {
		a, err := n.m.AttachTap(ctx, segment, id)
		if err != nil {
			return control.Attachment{}, err
		}
		return control.Attachment{IP: a.IP.String(), VMNet: &runtime.VMNet{
			Address: netip.PrefixFrom(a.IP, a.Subnet.Bits()), Gateway: a.Gateway, MAC: a.MAC, DNS: []netip.Addr{gw},
		}}, nil
	}
	a, err := n.m.Attach(ctx, segment, id)
	if err != nil {
		return control.Attachment{}, err
	}
	return control.Attachment{NetNS: a.NetNS, IP: a.IP.String(), ResolvConf: n.resolvPath(segment)}, nil
}

// Detach implements control.Network.
func (n *network) Detach(ctx context.Context, segment, id string) error {
	return n.m.Detach(ctx, segment, id)
}

func (n *network) resolvPath(segment string) string {
	return filepath.Join(n.resolvDir, segment+".conf")
}

// EnsureSegment implements control.SegmentNetwork: the bridge, the segment's resolv.conf
// and its name server.
func (n *network) EnsureSegment(ctx context.Context, name, subnet string) (control.SegmentInfo, error) {
	var prefix netip.Prefix
	if subnet != "" {
		p, err := netip.ParsePrefix(subnet)
		if err != nil {
			return control.SegmentInfo{}, fmt.Errorf("segment %s: subnet %q: %w", name, subnet, err)
		}
		prefix = p
	}
	seg, err := n.m.EnsureSegment(ctx, name, prefix)
	if err != nil {
		return control.SegmentInfo{}, err
	}
	conf := dns.ResolvConf(seg.Gateway, name)
	if old, err := os.ReadFile(n.resolvPath(name)); err != nil || !bytes.Equal(old, conf) {
		if err := writeFileAtomic(n.resolvPath(name), conf); err != nil {
			return control.SegmentInfo{}, err
		}
	}
	if err := n.names.Serve(name, seg.Gateway); err != nil {
		return control.SegmentInfo{}, err
	}
	return infoOf(seg), nil
}

// DeleteSegment implements control.SegmentNetwork.
func (n *network) DeleteSegment(ctx context.Context, name string) error {
	if err := n.m.DeleteSegment(ctx, name); err != nil {
		return err
	}
	err := n.names.Stop(name)
	if rmErr := os.Remove(n.resolvPath(name)); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, rmErr)
	}
	return err
}

// Segments implements control.SegmentNetwork.
func (n *network) Segments() []control.SegmentInfo {
	var out []control.SegmentInfo
	for _, s := range n.m.Segments() {
		out = append(out, infoOf(s))
	}
	return out
}

func infoOf(s netseg.Segment) control.SegmentInfo {
	return control.SegmentInfo{Name: s.Name, Subnet: s.Subnet.String(), Gateway: s.Gateway.String(), Bridge: s.Bridge}
}

// Enforce implements control.SegmentNetwork: it compiles the policy, replaces strata's
// nftables table when the ruleset changed (at once: a restart applies it again, the same),
// and gives the name server the new names.
func (n *network) Enforce(_ context.Context, st control.NetworkState) error {
	p := policy.Policy{Prefix: netseg.DefaultBridgePrefix}
	recs := dns.Records{Names: map[string]map[string][]netip.Addr{}, Egress: map[string]bool{}}
	for _, s := range st.Segments {
		subnet, err1 := netip.ParsePrefix(s.Subnet)
		gw, err2 := netip.ParseAddr(s.Gateway)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("segment %s: %w", s.Name, err)
		}
		seg := policy.Segment{Name: s.Name, Bridge: s.Bridge, Subnet: subnet, Gateway: gw, Egress: s.Spec.Egress != v1alpha1.EgressDeny}
		for _, a := range s.Spec.Allow {
			al := policy.Allow{From: a.From.Segment}
			for _, fp := range a.Ports {
				proto := string(fp.Protocol)
				if proto == "" {
					proto = string(v1alpha1.ProtocolTCP)
				}
				al.Ports = append(al.Ports, policy.Port{Port: uint16(fp.Port), Protocol: proto})
			}
			seg.Allow = append(seg.Allow, al)
		}
		p.Segments = append(p.Segments, seg)
		recs.Egress[s.Name] = seg.Egress
		recs.Names[s.Name] = map[string][]netip.Addr{}
	}
	for seg, names := range st.Names {
		if recs.Names[seg] == nil {
			recs.Names[seg] = map[string][]netip.Addr{}
		}
		for name, ips := range names {
			for _, ip := range ips {
				if a, err := netip.ParseAddr(ip); err == nil {
					recs.Names[seg][name] = append(recs.Names[seg][name], a)
				}
			}
		}
	}
	for _, pub := range st.Publish {
		pp := policy.Publish{HostPort: uint16(pub.HostPort), Protocol: string(pub.Protocol), Segment: pub.Segment}
		for _, ip := range pub.IPs {
			if a, err := netip.ParseAddr(ip); err == nil {
				pp.Targets = append(pp.Targets, netip.AddrPortFrom(a, uint16(pub.Port)))
			}
		}
		p.Publish = append(p.Publish, pp)
	}
	n.names.Set(recs)

	rs, err := policy.Compile(p)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if rs.Digest() == n.applied {
		return nil
	}
	c, err := nftables.New(policy.LargeBatches())
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if len(p.Segments) == 0 && len(p.Publish) == 0 {
		// Nothing of strata's is left on the host: neither is its table.
		if err := policy.Remove(c); err != nil {
			return err
		}
		n.applied = rs.Digest()
		return nil
	}
	if err := rs.Apply(c); err != nil {
		return err
	}
	n.applied = rs.Digest()
	n.log.Info("network policy applied", "rules", rs.Summary().String())
	return nil
}

// privilegedPorts are the host ports below this one: only root may listen on them, and
// the host's own services (ssh, DNS, web servers) live there.
const privilegedPorts = 1024

// hostClaims implements server.HostClaims for the host the network manager runs on.
type hostClaims struct {
	m *netseg.Manager
	// allowPrivileged lets workloads publish host ports below 1024 (serve
	// --allow-privileged-ports).
	allowPrivileged bool
}

// PublishRefusal refuses host ports below 1024 (unless allowed) and ports a socket of
// the host listens on: the published port's DNAT would take that service's connections.
func (c hostClaims) PublishRefusal(_ context.Context, protocol string, port int) (*server.Refusal, error) {
	if port < privilegedPorts && !c.allowPrivileged {
		return &server.Refusal{
			Reason: fmt.Sprintf("host port %d/%s is a privileged port (below %d), where the host's own services listen", port, protocol, privilegedPorts),
			Hint:   fmt.Sprintf("publish a host port of %d or above, or start the daemon with --allow-privileged-ports", privilegedPorts),
		}, nil
	}
	who, err := c.m.HostListener(protocol, uint16(port))
	if err != nil || who == "" {
		return nil, err
	}
	return &server.Refusal{
		Reason: fmt.Sprintf("host port %d/%s is in use on the host: %s listens on it, and publishing it would take that service's connections", port, protocol, who),
		Hint:   "publish a host port that no service of the host listens on",
	}, nil
}

// SubnetRefusal refuses subnets that overlap the host's routes and addresses (its
// uplinks' networks, VPNs, other bridges), strata's own bridges aside.
func (c hostClaims) SubnetRefusal(_ context.Context, subnet netip.Prefix) (*server.Refusal, error) {
	what, err := c.m.HostUse(subnet)
	if err != nil || what == "" {
		return nil, err
	}
	return &server.Refusal{
		Reason: fmt.Sprintf("subnet %s overlaps the host's %s: a segment there would capture the host's own traffic", subnet, what),
		Hint:   "choose a subnet the host does not use, or leave it empty to get one from the pool",
	}, nil
}

// writeFileAtomic replaces path with data (temporary file, rename).
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil { //nolint:gosec // mounted read-only into instances that may run as any user
		return err
	}
	return os.Rename(tmp, path)
}
