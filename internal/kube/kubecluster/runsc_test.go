package kubecluster

import (
	"os"
	"testing"
)

// needRunsc skips t, saying why, when c has no gvisor runtime handler (no runsc or
// gVisor's shim). On CI, whose host-setup builds both, that is a defect: t fails.
func needRunsc(t *testing.T, c *Cluster, why string) {
	t.Helper()
	if c.Runsc != "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("on CI the gvisor runtime handler must be there (%s): %s", why, c.NoRunsc)
	}
	t.Skipf("skipping: %s: %s", why, c.NoRunsc)
}
