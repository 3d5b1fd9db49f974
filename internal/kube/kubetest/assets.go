package kubetest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Version is the Kubernetes release the test control plane runs. It is the
// k8s.io/kubernetes version in hack/kube-apiserver/go.mod, which
// hack/kube-binaries.sh builds.
const Version = "v1.35.4"

// AssetsEnv names the environment variable that overrides DefaultAssets
// (hack/kube-binaries.sh reads it too).
const AssetsEnv = "STRATA_KUBE_ASSETS"

// DefaultAssets is where `make host-setup` puts kube-apiserver and etcd.
const DefaultAssets = "/var/cache/strata/kube/" + Version

// ErrNoAssets means the control plane's binaries are not where Assets looks.
var ErrNoAssets = errors.New("the test control plane's binaries are missing")

// binaries are the programs the assets directory must hold.
var binaries = []string{"kube-apiserver", "etcd"}

// Assets returns the directory that holds the control plane's binaries,
// kube-apiserver and etcd: $STRATA_KUBE_ASSETS, else DefaultAssets. It
// checks that both are there and that kube-apiserver is Version. The error
// wraps ErrNoAssets when a binary is missing or of another version, and
// says what to run.
func Assets() (string, error) {
	dir := os.Getenv(AssetsEnv)
	if dir == "" {
		dir = DefaultAssets
	}
	for _, name := range binaries {
		path := filepath.Join(dir, name)
		info, err := os.Stat(path) //nolint:gosec // G703: STRATA_KUBE_ASSETS names the binaries to test with, by design
		if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%w: no executable %s in %s; run `make host-setup` (it builds them) or set %s",
				ErrNoAssets, name, dir, AssetsEnv)
		}
	}
	out, err := exec.Command(filepath.Join(dir, "kube-apiserver"), "--version").Output() //nolint:gosec // G204: the binary found above
	if err != nil {
		return "", fmt.Errorf("%w: %s/kube-apiserver --version: %w; run `make host-setup` to rebuild it", ErrNoAssets, dir, err)
	}
	if got := strings.TrimSpace(string(out)); got != "Kubernetes "+Version {
		return "", fmt.Errorf("%w: %s/kube-apiserver is %q, want Kubernetes %s; run `make host-setup` to build it",
			ErrNoAssets, dir, got, Version)
	}
	return dir, nil
}
