package hostnet

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
	"strata.dev/strata/internal/netseg"
	"strata.dev/strata/internal/netseg/dns"
	"strata.dev/strata/internal/netseg/netstate"
	"strata.dev/strata/internal/netseg/policy"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/store"
)

// Options configure a Network. Every field but Logger is required.
type Options struct {
	// Manager is the network manager whose bridges and attachments the Network uses.
	Manager *netseg.Manager
	// Store is where Attach finds the subnet of a segment that a Segment object declares.
	Store *store.Store
	// DataDir is the daemon's data directory; the segments' resolv.conf files live in
	// DataDir/network/resolv.
	DataDir string
	Logger  *slog.Logger
}

// Network is the host side of segments for the controllers: the network manager's
// bridges and attachments, the nftables policy and the name server.
type Network struct {
	m     *netseg.Manager
	names *dns.Server
	store *store.Store
	log   *slog.Logger
	// resolvDir holds one resolv.conf per segment, mounted into containers.
	resolvDir string

	mu      sync.Mutex
	applied string // digest of the ruleset last applied
}

// New returns the Network of o, with its resolv.conf directory created. Close stops its
// name servers.
func New(o Options) (*Network, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	dir := filepath.Join(o.DataDir, "network", "resolv")
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // the files are mounted read-only into instances, which may run as any user
		return nil, err
	}
	return &Network{m: o.Manager, store: o.Store, log: o.Logger, resolvDir: dir, names: dns.New(dns.Options{Logger: o.Logger})}, nil
}

// Close stops the name servers.
func (n *Network) Close() error { return n.names.Close() }

// Attach implements control.Network. A segment that a Segment object declares is set up
// with its subnet; any other is set up on first use with one from the pool.
func (n *Network) Attach(ctx context.Context, segment, id string, vm bool) (netstate.Attachment, error) {
	var subnet netip.Prefix
	if rec, err := n.store.Get(ctx, v1alpha1.KindSegment, segment); err == nil {
		if sg, err := objects.Segment(rec); err == nil {
			if subnet, err = netstate.ParseSubnet(segment, sg.Spec.Subnet); err != nil {
				return netstate.Attachment{}, err
			}
		}
	}
	seg, err := n.EnsureSegment(ctx, segment, subnet)
	if err != nil {
		return netstate.Attachment{}, err
	}
	if vm {
		a, err := n.m.AttachTap(ctx, segment, id)
		if err != nil {
			return netstate.Attachment{}, err
		}
		return netstate.Attachment{IP: a.IP, VMNet: &runtime.VMNet{
			Address: netip.PrefixFrom(a.IP, a.Subnet.Bits()), Gateway: a.Gateway, MAC: a.MAC,
			DNS: []netip.Addr{seg.Gateway}, Search: []string{segment},
		}}, nil
	}
	a, err := n.m.Attach(ctx, segment, id)
	if err != nil {
		return netstate.Attachment{}, err
	}
	return netstate.Attachment{NetNS: a.NetNS, IP: a.IP, ResolvConf: n.resolvPath(segment)}, nil
}

// Detach implements control.Network.
func (n *Network) Detach(ctx context.Context, segment, id string) error {
	return n.m.Detach(ctx, segment, id)
}

func (n *Network) resolvPath(segment string) string {
	return filepath.Join(n.resolvDir, segment+".conf")
}

// EnsureSegment implements control.SegmentNetwork: the bridge, the segment's resolv.conf
// and its name server.
func (n *Network) EnsureSegment(ctx context.Context, name string, subnet netip.Prefix) (netstate.Segment, error) {
	seg, err := n.m.EnsureSegment(ctx, name, subnet)
	if err != nil {
		return netstate.Segment{}, err
	}
	conf := dns.ResolvConf(seg.Gateway, name)
	if old, err := os.ReadFile(n.resolvPath(name)); err != nil || !bytes.Equal(old, conf) {
		if err := writeFileAtomic(n.resolvPath(name), conf); err != nil {
			return netstate.Segment{}, err
		}
	}
	if err := n.names.Serve(name, seg.Gateway); err != nil {
		return netstate.Segment{}, err
	}
	return seg, nil
}

// DeleteSegment implements control.SegmentNetwork.
func (n *Network) DeleteSegment(ctx context.Context, name string) error {
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
func (n *Network) Segments() []netstate.Segment {
	return n.m.Segments()
}

// Enforce implements control.SegmentNetwork: it compiles the state, gives the name
// server the new names, and replaces strata's nftables table when the ruleset changed
// (at once: a restart applies it again, the same).
func (n *Network) Enforce(_ context.Context, st netstate.State) error {
	p, recs := Compile(st, netseg.DefaultBridgePrefix)
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

// writeFileAtomic replaces path with data (temporary file, rename).
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil { //nolint:gosec // mounted read-only into instances that may run as any user
		return err
	}
	return os.Rename(tmp, path)
}
