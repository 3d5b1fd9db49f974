package daemon_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const confined = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: plain}
spec:
  isolation: container
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: pinger}
spec:
  isolation: container
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
  traits: {capabilities: [NET_RAW]}
`

// TestDaemonConfinement: through the daemon, a container runs under a seccomp filter
// without NET_RAW and cannot make a user namespace; a workload that asks for NET_RAW is
// told it needs a VM, and, forced into a container, gets NET_RAW.
func TestDaemonConfinement(t *testing.T) {
	e := newE2E(t)
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	file := filepath.Join(e.dir, "confined.yaml")
	if err := os.WriteFile(file, []byte(confined), 0o600); err != nil {
		t.Fatal(err)
	}
	// The container tier is weaker than NET_RAW's floor: refused without --force.
	e.expectExit(1, "a VM contains them (NET_RAW)", "apply", "-f", file)
	e.must("apply", "-f", file, "--force")
	for _, name := range []string{"plain", "pinger"} {
		e.eventually(name+" runs", 60*time.Second, func() error {
			_, err := e.running(name, 1)
			return err
		})
	}

	status := func(name string) (seccomp string, netRaw bool) {
		t.Helper()
		out := e.must("exec", name, "--", "cat", "/proc/1/status")
		for line := range strings.Lines(out) {
			key, value, _ := strings.Cut(line, ":")
			value = strings.TrimSpace(value)
			switch key {
			case "Seccomp":
				seccomp = value
			case "CapEff":
				mask, err := strconv.ParseUint(value, 16, 64)
				if err != nil {
					t.Fatalf("%s: CapEff %q: %v", name, value, err)
				}
				netRaw = mask&(1<<13) != 0 // CAP_NET_RAW is capability 13
			}
		}
		return seccomp, netRaw
	}
	// busybox's applets: the test image links only a few of them into /bin.
	ping := []string{"exec", "", "--", "busybox", "ping", "-c", "1", "-W", "1", "127.0.0.1"}

	if seccomp, netRaw := status("plain"); seccomp != "2" || netRaw {
		t.Errorf("plain: Seccomp %q, NET_RAW %v; want 2, false", seccomp, netRaw)
	}
	ping[1] = "plain"
	if _, err := e.strata(ping...); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("plain pinged, or failed otherwise: %v", err)
	}
	if _, err := e.strata("exec", "plain", "--", "busybox", "unshare", "-U", "-r", "true"); err == nil || !strings.Contains(err.Error(), "Operation not permitted") {
		t.Errorf("plain made a user namespace, or failed otherwise: %v", err)
	}

	if seccomp, netRaw := status("pinger"); seccomp != "2" || !netRaw {
		t.Errorf("pinger: Seccomp %q, NET_RAW %v; want 2, true", seccomp, netRaw)
	}
	ping[1] = "pinger"
	if out, err := e.strata(ping...); err != nil {
		t.Errorf("pinger asked for NET_RAW and cannot ping: %v\n%s", err, out)
	}
}
