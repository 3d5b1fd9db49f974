package netseg

import (
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
)

// Defaults for Options fields left zero.
var (
	// DefaultPool is the prefix segment subnets come from.
	DefaultPool = netip.MustParsePrefix("10.213.0.0/16")
)

const (
	// DefaultNetNSDir is where instance network namespaces are bind-mounted.
	DefaultNetNSDir = "/run/strata/netns"
	// DefaultBridgePrefix starts the name of every link the manager creates.
	DefaultBridgePrefix = "st-"

	// maxIfName is the longest interface name Linux accepts (IFNAMSIZ - 1).
	maxIfName = 15
	// maxPrefixLen keeps room in interface names for what follows the prefix.
	maxPrefixLen = 6
)

// Options configure a Manager. Only StateDir is required.
type Options struct {
	// Pool is the IPv4 prefix segment subnets are allocated from, a /24
	// each; at most a /8, at least a /24. Default DefaultPool.
	Pool netip.Prefix

	// StateDir holds network.json, the record of segments and attachments
	// (created if missing). Required.
	StateDir string

	// NetNSDir is where instance network namespaces are bind-mounted, one
	// file per instance ID (created if missing, mode 0750). Default DefaultNetNSDir.
	NetNSDir string

	// BridgePrefix starts the name of every bridge, host veth and tap the
	// manager creates, and marks them as its own for Cleanup: 1-6
	// characters of lower-case letters, digits, '-' and '.'.
	// Default DefaultBridgePrefix.
	BridgePrefix string

	// Forwarding sets net.ipv4.ip_forward=1 in the host namespace when the
	// first segment is ensured. Routed traffic (egress, published ports)
	// needs it; traffic inside a segment and to the gateway does not.
	Forwarding bool

	// Host is the network namespace that holds bridges, host veths and
	// taps.
	// Default RootHost().
	Host Host

	// Logger receives one record per change to the host. Default: discard.
	Logger *slog.Logger
}

// withDefaults returns o with zero fields filled in, or an ErrInvalid error.
func (o Options) withDefaults() (Options, error) {
	if !o.Pool.IsValid() {
		o.Pool = DefaultPool
	}
	if o.NetNSDir == "" {
		o.NetNSDir = DefaultNetNSDir
	}
	if o.BridgePrefix == "" {
		o.BridgePrefix = DefaultBridgePrefix
	}
	if o.Host == nil {
		o.Host = RootHost()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.StateDir == "":
		return o, fmt.Errorf("%w: options: StateDir is required (the directory that keeps network.json)", ErrInvalid)
	case !filepath.IsAbs(o.NetNSDir):
		return o, fmt.Errorf("%w: options: NetNSDir %q is not an absolute path", ErrInvalid, o.NetNSDir)
	case !o.Pool.Addr().Is4() || o.Pool.Masked() != o.Pool:
		return o, fmt.Errorf("%w: options: pool %s is not an IPv4 network address with a prefix length (like %s)", ErrInvalid, o.Pool, DefaultPool)
	case o.Pool.Bits() < 8 || o.Pool.Bits() > 24:
		return o, fmt.Errorf("%w: options: pool %s must be between a /8 and a /24", ErrInvalid, o.Pool)
	case !validPrefix(o.BridgePrefix):
		return o, fmt.Errorf("%w: options: BridgePrefix %q must be 1-%d characters of a-z, 0-9, '-' and '.'", ErrInvalid, o.BridgePrefix, maxPrefixLen)
	}
	return o, nil
}
