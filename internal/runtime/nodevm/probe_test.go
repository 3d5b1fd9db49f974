package nodevm_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime/nodevm"
)

// The driver's check says which runtimes node VMs carry and how many run,
// and is not ready, naming the runtime and what to do, when one is
// missing. It boots nothing.
func TestProbe(t *testing.T) {
	s := needNodeVMs(t)
	newDriver := func(name string, adjust func(*nodevm.Config)) *nodevm.Driver {
		cfg := nodevm.Config{QEMU: s.q, StateDir: filepath.Join(s.state, name), GuestCacheDir: guestCache, Tools: s.tools}
		if adjust != nil {
			adjust(&cfg)
		}
		d, err := nodevm.New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}

	checks := newDriver("probe-ok", nil).Probe(t.Context())
	if len(checks) != 1 {
		t.Fatalf("Probe: %d checks, want 1: %+v", len(checks), checks)
	}
	c := checks[0]
	want := "node VMs carry crun at " + s.tools.Crun
	if !c.Ready || c.Name != nodevm.Name || !strings.Contains(c.Message, want) || !strings.Contains(c.Message, "0 running") {
		t.Errorf("Probe: %+v; want ready, %q and 0 running", c, want)
	}
	if !slices.Contains(c.Tiers, v1alpha1.TierContainer) {
		t.Errorf("Probe: tiers %v, want the container tier", c.Tiers)
	}
	if s.tools.Runsc != "" && !strings.Contains(c.Message, "runsc at "+s.tools.Runsc) {
		t.Errorf("Probe: %q does not name runsc at %s", c.Message, s.tools.Runsc)
	}

	missing := filepath.Join(t.TempDir(), "crun")
	c = newDriver("probe-missing", func(cfg *nodevm.Config) { cfg.Tools.Crun = missing }).Probe(t.Context())[0]
	if c.Ready || !strings.Contains(c.Message, "crun: ") || !strings.Contains(c.Message, missing) || !strings.Contains(c.Message, "make host-setup") {
		t.Errorf("Probe with no crun: %+v; want not ready, naming %s and make host-setup", c, missing)
	}
}
