package kubetest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAssetsMissing(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(AssetsEnv, dir)
	_, err := Assets()
	if !errors.Is(err, ErrNoAssets) {
		t.Fatalf("got %v, want ErrNoAssets", err)
	}
	for _, want := range []string{"make host-setup", dir, "kube-apiserver"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestAssetsWrongVersion(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(AssetsEnv, dir)
	for name, script := range map[string]string{
		"kube-apiserver": "#!/bin/sh\necho Kubernetes v1.0.0\n",
		"etcd":           "#!/bin/sh\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Assets()
	if !errors.Is(err, ErrNoAssets) || !strings.Contains(err.Error(), "v1.0.0") {
		t.Fatalf("got %v, want ErrNoAssets naming the version found", err)
	}
}

// TestVersionMatchesBuild keeps Version and the kube-apiserver that
// hack/kube-binaries.sh builds the same release.
func TestVersionMatchesBuild(t *testing.T) {
	b, err := os.ReadFile("../../../hack/kube-apiserver/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "k8s.io/kubernetes" {
			if f[1] != Version {
				t.Errorf("hack/kube-apiserver/go.mod builds %s; kubetest.Version is %s", f[1], Version)
			}
			return
		}
	}
	t.Fatal("hack/kube-apiserver/go.mod requires no k8s.io/kubernetes")
}

func TestNamespacePrefix(t *testing.T) {
	tests := []struct{ test, want string }{
		{"TestApply", "testapply-"},
		{"TestApply/vm_tier", "testapply-vm-tier-"},
		{"TestX/#00", "testx-00-"},
		{"/", "test-"},
		{strings.Repeat("TestLong", 10), strings.Repeat("testlong", 7)[:50] + "-"},
		{"Test" + strings.Repeat("a", 45) + "/__b", "test" + strings.Repeat("a", 45) + "-"},
	}
	for _, tt := range tests {
		if got := namespacePrefix(tt.test); got != tt.want {
			t.Errorf("namespacePrefix(%q) = %q, want %q", tt.test, got, tt.want)
		}
	}
}

// TestReapOrphans leaves a test directory behind as a crashed test binary
// would (its owner gone, a process naming it still running) and checks that
// reapOrphans stops the process and removes the directory, and leaves a
// live owner's directory alone.
func TestReapOrphans(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	orphan, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		t.Fatal(err)
	}
	if err := makeTestDir(orphan); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(orphan, ownerFile), []byte(strconv.Itoa(gone.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	// A stand-in for etcd: a process whose command line names the
	// directory (sleep, run from a copy inside it).
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary to stand in for etcd")
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	standIn := filepath.Join(orphan, "etcd", "sleep")
	if err := os.WriteFile(standIn, b, 0o755); err != nil {
		t.Fatal(err)
	}
	stray := exec.Command(standIn, "60")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- stray.Wait() }()
	t.Cleanup(func() { _ = stray.Process.Kill() })

	live, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		t.Fatal(err)
	}
	if err := makeTestDir(live); err != nil { // owned by this process
		t.Fatal(err)
	}

	reapOrphans()
	select {
	case err := <-exited:
		t.Logf("the orphan's process ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Error("the orphan's process still runs")
	}
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the orphan's directory is still there (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(live, ownerFile)); err != nil {
		t.Errorf("the live test directory was touched: %v", err)
	}
}
