package kubecluster

import (
	"os"
	"strings"
	"testing"

	"strata.dev/strata/internal/kube/kubetest"
)

// TestModulesBuildTheSameRelease checks that every cluster binary's wrapper
// module under hack/ builds the Kubernetes release the harness expects
// (kubetest.Version, kube-apiserver's): components of different releases
// in one cluster would test a skew nobody runs.
func TestModulesBuildTheSameRelease(t *testing.T) {
	for _, name := range []string{"kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"} {
		b, err := os.ReadFile("../../../hack/" + name + "/go.mod")
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for line := range strings.SplitSeq(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "k8s.io/kubernetes" && strings.HasPrefix(f[1], "v") {
				got = f[1]
				break
			}
		}
		if got != kubetest.Version {
			t.Errorf("hack/%s/go.mod builds k8s.io/kubernetes %q; kubetest.Version is %s", name, got, kubetest.Version)
		}
		if !strings.Contains(string(b), "tool k8s.io/kubernetes/cmd/"+name+"\n") {
			t.Errorf("hack/%s/go.mod has no `tool k8s.io/kubernetes/cmd/%s`", name, name)
		}
	}
}
