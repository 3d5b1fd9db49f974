// Package kubecluster is test support, not part of strata proper: it runs a
// real single-node Kubernetes cluster for a test, from binaries built from
// source (hack/kube-binaries.sh with STRATA_KUBE_CLUSTER=1), so that what
// strata renders for Kubernetes runs as pods rather than only passing the
// API server's validation (which internal/kube/kubetest covers).
//
// Terms:
//
//   - the cluster is etcd, kube-apiserver, kube-controller-manager,
//     kube-scheduler, a kubelet and kube-proxy (nftables mode), plus a
//     containerd of its own (its own configuration, root, state and socket,
//     the CRI plugin on) that the kubelet runs pods on with runc (cgroupfs
//     driver), and with runsc through gVisor's shim for the runtime handler
//     "gvisor" (GVisorHandler) when runsc and the shim are there
//     (Cluster.Runsc; PodRuntimes reads from containerd which runtime runs
//     each pod);
//   - the NetworkPolicy engine, kube-network-policies, runs as a DaemonSet
//     once a test calls EnforceNetworkPolicies; the kernels of this host
//     kind lack what it needs (Cluster.NoPolicyEngine says what);
//   - the cluster directory (Cluster.Dir, $TMPDIR/strata-kc-*) holds every
//     configuration, certificate, state directory and log (logs/NAME.log);
//     its base name (Cluster.Name) also names the network namespace and the
//     cgroup the pods run under; admin.kubeconfig (Cluster.Kubeconfig) is
//     for programs run inside the namespace with Exec, such as the strata
//     command that BuildStrata builds;
//   - the network namespace is the test's own: every component runs in it
//     (nsenter --net), the node's address is on a veth link there, and the
//     Debian CNI plugins put pods on a bridge there. The test reaches the
//     API server through Cluster.Config, whose dialer makes its sockets
//     inside the namespace;
//   - the images are built locally, no registry being reachable: a pause
//     image (the pause program in ./pause, built with the go command) and
//     internal/testimage's busybox (BusyboxImage, and ExampleImage, the name
//     the repository's examples use), imported into containerd's k8s.io
//     namespace. Pods must use imagePullPolicy Never or IfNotPresent;
//   - Script pods (RunScript) run a shell script once and return its log:
//     what a test sees from inside the cluster.
//   - strata's operator runs in the cluster once a test calls
//     DeployOperator: the image `make operator-image` writes and the objects
//     of deploy/operator, as its users install it.
//   - metrics-server runs once a test calls ServeMetrics: a process of
//     the cluster behind the metrics.k8s.io APIService, for the HPA
//     controller and the operator's MetricsSource;
//   - no storage provisioner runs: ProvideVolume makes the hostPath
//     PersistentVolume a claim waits for, reserved for that claim;
//   - the operator runs in the test's process when a test starts it
//     (operator.Setup in a controller-runtime manager on Cluster.Config).
//
// Start starts a cluster for one test (the node is Ready after 4-7 s on 2
// busy cores) and stops it when the test ends; it skips the test, saying what to build or
// install, when the host cannot run one (Skip). Stop leaves no process,
// mount, network namespace, bridge or cgroup behind, and says what it could
// not clean. The cluster directory holds the PID of the test process that
// made it (owner.pid): Start first removes the clusters of test processes
// that died without stopping theirs (a `go test -timeout` panic, a
// SIGKILL). docs/kubernetes-tests.md records what this host kind needs of
// each component.
package kubecluster
