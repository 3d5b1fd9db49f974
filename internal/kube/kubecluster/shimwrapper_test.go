package kubecluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestShimWrapper runs the wrapper in front of a stand-in for gVisor's
// shim: the start command's JSON comes out as the bare address containerd
// 1.6 reads, any other command's output passes unchanged, and the shim
// sees the wrapper's uid_map as its own.
func TestShimWrapper(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the wrapper mounts (needs root)")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "containerd"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := writeFile(filepath.Join(dir, "containerd"), "uid_map", fakeUIDMap); err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(dir, "shim")
	stand := `#!/bin/sh
for last; do :; done
if [ "$last" = start ]; then printf '{"version":2,"address":"unix:///run/containerd/s/abc","protocol":"ttrpc"}'; exit 0; fi
if [ "$last" = fail ]; then echo 'shim: no such thing' >&2; exit 3; fi
cat /proc/$$/uid_map
`
	if err := os.WriteFile(shim, []byte(stand), 0o700); err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, ShimBinary)
	if err := os.WriteFile(wrapper, []byte(shimWrapper(dir, shim)), 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command(wrapper, args...).Output()
		return string(out), err
	}
	out, err := run("-namespace", "k8s.io", "-id", "x", "start")
	if err != nil || out != "unix:///run/containerd/s/abc" {
		t.Errorf("start printed %q (%v), want the bare address", out, err)
	}
	out, err = run("-id", "x", "delete")
	if err != nil || strings.Fields(out)[2] != "1" {
		t.Errorf("delete printed %q (%v), want the wrapper's uid_map", out, err)
	}
	if _, err := run("-id", "x", "fail"); err == nil {
		t.Errorf("a failing shim command succeeded through the wrapper")
	}
	if b, _ := os.ReadFile("/proc/self/uid_map"); strings.Fields(string(b))[2] == "1" {
		t.Errorf("the wrapper's uid_map leaked into the test's mount namespace")
	}
}
