package daemon_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"strata.dev/strata/internal/daemon"
)

const twin = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: twin}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
`

// TestTwoDaemonsOneHost: two daemons on one host, each with its own data dir (and
// network namespace, as two hosts would have) and no --netns-dir, run a workload of the
// same name. Each keeps its instance's network namespace handle under its own run
// directory, so neither takes or removes the other's.
func TestTwoDaemonsOneHost(t *testing.T) {
	a, b := newE2E(t), newE2E(t)
	a.ownRunDir, b.ownRunDir = true, true
	a.start()
	b.start()
	runA := daemon.RunDirFor(filepath.Join(a.dir, "data"))
	runB := daemon.RunDirFor(filepath.Join(b.dir, "data"))
	if runA == runB || runA == daemon.DefaultRunDir {
		t.Fatalf("run dirs %s and %s: want two, neither the default", runA, runB)
	}
	for _, e := range []*e2e{a, b} {
		e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
		e.applyDoc("twin", twin)
	}
	for _, e := range []*e2e{a, b} {
		e.eventually("twin runs", 60*time.Second, func() error {
			_, err := e.running("twin", 1)
			return err
		})
	}
	for _, dir := range []string{runA, runB} {
		if _, err := os.Stat(filepath.Join(dir, "netns", "twin-0")); err != nil {
			t.Errorf("the instance's network namespace handle: %v", err)
		}
	}
	// Deleting the first daemon's workload leaves the second one's running.
	a.must("delete", "workload", "twin", "--timeout", "60s")
	if _, err := os.Stat(filepath.Join(runB, "netns", "twin-0")); err != nil {
		t.Errorf("the second daemon's handle after the first one's delete: %v", err)
	}
	if _, err := b.running("twin", 1); err != nil {
		t.Errorf("the second daemon's twin after the first one's delete: %v", err)
	}
	if out := b.must("exec", "twin", "--", "echo", "alive"); out != "alive\n" {
		t.Errorf("exec in the second daemon's twin: %q", out)
	}
}
