package kubecluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Addresses inside the cluster's network namespace. The namespace is the
// test's own, so they collide with nothing on the host; none is in
// 192.0.2.0/24, the host's own network on the project's machines.
const (
	nodeIP      = "10.251.0.1"    // the node's address, on a dummy link
	nodeCIDR    = nodeIP + "/24"  //
	podSubnet   = "10.252.0.0/24" // the CNI bridge's range
	serviceCIDR = "10.253.0.0/24" // the API server's Service range
	firstSvcIP  = "10.253.0.1"    // the kubernetes Service
	nodeLink    = "kc0"           // the dummy link that carries nodeIP
	podBridge   = "kc-br0"        // the CNI bridge
	nodeName    = "strata-node"   // the kubelet's Node
	apiPort     = 6443
)

// PauseImage and BusyboxImage are the images the harness imports into
// containerd's k8s.io namespace before the kubelet starts: the sandbox
// image of every pod, and internal/testimage's busybox for the tests' pods
// (use imagePullPolicy Never: no registry is reachable).
const (
	PauseImage   = "strata.test/pause:1"
	BusyboxImage = "strata.test/busybox:1"
)

// writeFile writes content to dir/name (0600) and returns the path.
func writeFile(dir, name, content string) (string, error) {
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, []byte(content), 0o600)
}

// kubeconfig is the administrator's kubeconfig every component uses.
func kubeconfig(p pki) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://%s:%d
    certificate-authority: %s
users:
- name: admin
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, nodeIP, apiPort, p.path("ca.crt"), p.path("admin.crt"), p.path("admin.key"))
}

// containerdConfig is containerd's configuration: everything under dir, the
// CRI plugin on with the locally built pause image, runc through the v2
// shim with cgroupfs, and the Debian CNI plugins.
//
// restrict_oom_score_adj: the CRI plugin gives sandboxes an
// oom_score_adj of -998 and the kubelet gives Guaranteed containers -997;
// root here lacks CAP_SYS_RESOURCE, so lowering it fails and the sandbox
// never starts. The option raises such values to containerd's own.
func containerdConfig(dir string) string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[6]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[7]q
`, filepath.Join(dir, "containerd", "root"), filepath.Join(dir, "containerd", "state"),
		containerdSocket(dir), filepath.Join(dir, "containerd", "opt"), PauseImage,
		filepath.Join(dir, "containerd", "runc"), filepath.Join(dir, "cni", "net.d"))
}

func containerdSocket(dir string) string { return filepath.Join(dir, "containerd", "containerd.sock") }

// cniConfig is the pod network: a bridge in the cluster's namespace with
// host-local addresses from podSubnet, kept under dir.
func cniConfig(dir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "strata-kc",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, podBridge, podSubnet, filepath.Join(dir, "cni", "ipam"))
}

// kubeletConfig is the kubelet's configuration for this host kind (cgroup
// v1 in hybrid mode, no swap accounting, root without CAP_SYS_RESOURCE);
// docs/kubernetes-tests.md says why each setting is there.
func kubeletConfig(dir, cgroupRoot string, p pki) string {
	return strings.TrimLeft(fmt.Sprintf(`
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://%[1]s
cgroupDriver: cgroupfs
cgroupRoot: %[2]s
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
address: %[3]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %[4]s}
authorization:
  mode: AlwaysAllow
clusterDomain: cluster.local
resolvConf: ""
podLogsDir: %[5]s
registerNode: true
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
`, containerdSocket(dir), cgroupRoot, nodeIP, p.path("ca.crt"), filepath.Join(dir, "kubelet", "pod-logs")), "\n")
}
