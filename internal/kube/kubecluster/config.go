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
	nodeIP      = "10.251.0.1"    // the node's address, on a veth link
	nodeCIDR    = nodeIP + "/24"  //
	podSubnet   = "10.252.0.0/24" // the CNI bridge's range
	serviceCIDR = "10.253.0.0/24" // the API server's Service range
	firstSvcIP  = "10.253.0.1"    // the kubernetes Service
	nodeLink    = "kc0"           // the veth link that carries nodeIP
	podBridge   = "kc-br0"        // the CNI bridge
	nodeName    = "strata-node"   // the kubelet's Node
	apiPort     = 6443
)

// PauseImage and BusyboxImage are the images the harness imports into
// containerd's k8s.io namespace before the kubelet starts: the sandbox
// image of every pod, and internal/testimage's busybox for the tests' pods
// (use imagePullPolicy Never: no registry is reachable).
//
// ExampleImage is the same busybox under the name the repository's
// examples use (examples/hybrid, what `make demo` imports), so that they
// run unchanged.
const (
	PauseImage   = "strata.test/pause:1"
	BusyboxImage = "strata.test/busybox:1"
	ExampleImage = "localhost/busybox:1"
)

// GVisorHandler is the containerd runtime handler that runs pods under
// gVisor's runsc, when the host has runsc (Cluster.Runsc): a RuntimeClass
// with this handler puts its pods there.
const GVisorHandler = "gvisor"

// RunscEnv names the runsc the harness gives containerd; without it,
// RunscDefault (where `make host-setup` builds it).
const (
	RunscEnv     = "STRATA_RUNSC"
	RunscDefault = "/opt/strata/bin/runsc"
	ShimBinary   = "containerd-shim-runsc-v1" // gVisor's shim, in the assets directory
)

// findGVisor returns runsc and gVisor's containerd shim (in the assets
// directory, built by hack/kube-binaries.sh), or why the cluster cannot
// have the gvisor handler.
func findGVisor(assets string) (runsc, shim, why string) {
	runsc = os.Getenv(RunscEnv)
	if runsc == "" {
		runsc = RunscDefault
	}
	if _, err := os.Stat(runsc); err != nil { //nolint:gosec // G703: the operator's own setting
		return "", "", fmt.Sprintf("no runsc at %s (set %s, or run `make host-setup`, which builds it there)", runsc, RunscEnv)
	}
	shim = filepath.Join(assets, ShimBinary)
	if _, err := os.Stat(shim); err != nil {
		return "", "", fmt.Sprintf("no %s: run `STRATA_KUBE_CLUSTER=1 hack/kube-binaries.sh` (it builds gVisor's shim for %s)", shim, runsc)
	}
	return runsc, shim, ""
}

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
//
// With gVisor (gvisor true), the runtime handler "gvisor" (GVisorHandler)
// runs pods under runsc through gVisor's own shim, containerd-shim-runsc-v1,
// configured by runscConfig. runc's shim with runsc in runc's place starts a
// pod's sandbox but not its containers: runsc gives the sandbox its own
// standard output, so the shim's `runsc start` never returns while the
// container runs (docs/kubernetes-tests.md).
func containerdConfig(dir string, gvisor bool) string {
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
%[8]s  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[7]q
`, filepath.Join(dir, "containerd", "root"), filepath.Join(dir, "containerd", "state"),
		containerdSocket(dir), filepath.Join(dir, "containerd", "opt"), PauseImage,
		filepath.Join(dir, "containerd", "runc"), filepath.Join(dir, "cni", "net.d"), gvisorRuntime(dir, gvisor))
}

// gvisorRuntime is the CRI runtime entry of the gvisor handler, or ""
// without gVisor.
func gvisorRuntime(dir string, gvisor bool) string {
	if !gvisor {
		return ""
	}
	return fmt.Sprintf(`    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%[1]s]
      runtime_type = "io.containerd.runsc.v1"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%[1]s.options]
        TypeUrl = "io.containerd.runsc.v1.options"
        ConfigPath = %[2]q
`, GVisorHandler, filepath.Join(dir, "containerd", "runsc.toml"))
}

// runscConfig is the configuration of gVisor's shim: the runsc to run, its
// state under dir, and runsc's logs in the cluster's log directory.
func runscConfig(dir, runsc string) string {
	return fmt.Sprintf(`binary_name = %q
root = %q
`, runsc, filepath.Join(dir, "containerd", "runsc"))
}

// shimWrapper is the program containerd runs as containerd-shim-runsc-v1
// (first on its PATH) in front of gVisor's shim, which is built for
// containerd 2 and would not otherwise run under Debian's containerd 1.6 on
// this host kind. It changes two things:
//
//   - the shim's start command sets the shim's oom_score_adj to -999 and
//     fails when the write is refused, which it is here (lowering the score
//     needs CAP_SYS_RESOURCE, which root lacks). The shim ignores a refusal
//     when it runs in a user namespace, which it tells from
//     /proc/self/uid_map; the wrapper shows it a user namespace's uid_map,
//     bound over its own in a mount namespace of its own (a slave of
//     containerd's, so that the mounts containerd makes later, the
//     containers' root filesystems, reach the shim and runsc). The shim
//     still runs as root in the initial user namespace;
//   - the start command prints its address in containerd 2's form (JSON:
//     version, address, protocol); containerd 1.6 reads a bare address, so
//     the wrapper prints the address alone.
//
// Host changes that make it unneeded: CAP_SYS_RESOURCE for root, and
// containerd 1.7 or later.
func shimWrapper(dir, shim string) string {
	return fmt.Sprintf(`#!/bin/sh
run() { unshare --mount --propagation slave /bin/sh -c 'mount --bind "$0" /proc/$$/uid_map && exec "$@"' %q %q "$@"; }
for last; do :; done
[ "$last" = start ] || { run "$@"; exit; }
out=$(run "$@") || { printf '%%s' "$out"; exit 1; }
addr=$(printf '%%s' "$out" | sed -n 's/.*"address":"\([^"]*\)".*/\1/p')
printf '%%s' "${addr:-$out}"
`, filepath.Join(dir, "containerd", "uid_map"), shim)
}

// fakeUIDMap is the uid_map the shim wrapper shows the shim: one of a user
// namespace (anything but the initial namespace's 0 0 4294967295).
const fakeUIDMap = "         0          0          1\n"

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
