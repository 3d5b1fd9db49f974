package cli

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/api/wire"
)

// TestDescribeWorkloadDaemonWithoutNodes: describe workload against a daemon from before
// node VMs, which does not know the nodes path, still describes the workload, naming each
// replica's driver.
func TestDescribeWorkloadDaemonWithoutNodes(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "strata.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	w := v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: "web"},
		Status: &v1alpha1.WorkloadStatus{Tier: v1alpha1.TierContainer, Phase: v1alpha1.PhaseRunning,
			NodeVM:    &v1alpha1.NodeVMDecision{Class: "shop/internal/internal", Reason: "policy: spec.nodeVM.when is false"},
			Instances: []v1alpha1.Instance{{ID: "web-0", Tier: v1alpha1.TierContainer, Driver: "containerd", State: "running", PID: 77}}}}
	daemon := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case wire.Prefix + "workloads/web":
			_ = json.NewEncoder(rw).Encode(w)
		case wire.Prefix + "events":
			_, _ = rw.Write([]byte(`{"items": []}`))
		default:
			rw.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(rw).Encode(wire.Status{APIVersion: "v1", Kind: "Status", Code: http.StatusNotFound,
				Reason: wire.ReasonNotFound, Message: "unknown resource " + r.URL.Path})
		}
	}))
	daemon.Listener = l
	daemon.Start()
	t.Cleanup(daemon.Close)

	code, stdout, stderr := run(t, "", "--socket", sock, "describe", "workload", "web")
	if code != ExitOK || !strings.Contains(squeeze(stdout), "web-0 running host, containerd (policy: spec.nodeVM.when is false) 77") {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant web-0 on the host's containerd", code, stderr, stdout)
	}
}
