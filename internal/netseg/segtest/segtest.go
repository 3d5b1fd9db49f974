// Package segtest gives a test a network manager whose host is a network
// namespace of the test's own, with one segment in it. Only tests import it.
package segtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/vishvananda/netns"

	"strata.dev/strata/internal/netseg"
	"strata.dev/strata/internal/netseg/nstest"
)

// Net is a network manager over a test's network namespace, and the
// segment it made there.
type Net struct {
	M   *netseg.Manager
	Seg netseg.Segment
	NS  netns.NsHandle
}

// New makes a namespace named prefix-<random>, a manager whose host it is,
// and segment over subnet (which must be one tb alone uses, never
// 192.0.2.0/24); when tb ends the manager cleans up, the segment and the
// namespace are deleted. A host that cannot make a namespace skips tb.
func New(tb testing.TB, prefix, segment string, subnet netip.Prefix) Net {
	tb.Helper()
	name := fmt.Sprintf("%s-%x", prefix, rand.Uint32()) //nolint:gosec // G404: a test namespace's name, no secret
	ns, err := nstest.NewNamed(name)
	if err != nil {
		tb.Skipf("skipping: cannot create a network namespace: %v", err)
	}
	tb.Cleanup(func() {
		_ = ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			tb.Errorf("delete namespace %s: %v", name, err)
		}
	})
	dir := tb.TempDir()
	m, err := netseg.New(netseg.Options{
		StateDir: filepath.Join(dir, "net"), NetNSDir: filepath.Join(dir, "netns"),
		Host: netseg.NamespaceHost(ns),
	})
	if err != nil {
		tb.Fatal(err)
	}
	seg, err := m.EnsureSegment(tb.Context(), segment, subnet)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx := context.Background()
		if err := m.Cleanup(ctx, func(string) bool { return false }); err != nil {
			tb.Errorf("network cleanup: %v", err)
		}
		if err := m.DeleteSegment(ctx, seg.Name); err != nil {
			tb.Errorf("delete segment: %v", err)
		}
	})
	return Net{M: m, Seg: seg, NS: ns}
}
