// Package kubecluster is test support, not part of strata proper: it runs a
// real single-node Kubernetes cluster for a test, from binaries built from
// source (hack/kube-binaries.sh with STRATA_KUBE_CLUSTER=1), so that what
// strata renders for Kubernetes runs as pods rather than only passing the
// API server's validation (which internal/kube/kubetest covers).
//
// Terms:
//
//   - the cluster is etcd, kube-apiserver, kube-controller-manager,
//     kube-scheduler and a kubelet, plus a containerd of its own (its own
//     configuration, root, state and socket, the CRI plugin on) that the
//     kubelet runs pods on with runc (cgroupfs driver);
//   - the cluster directory (Cluster.Dir, $TMPDIR/strata-kc-*) holds every
//     configuration, certificate, state directory and log (logs/NAME.log);
//     its base name (Cluster.Name) also names the network namespace and the
//     cgroup the pods run under;
//   - the network namespace is the test's own: every component runs in it
//     (nsenter --net), the node's address is on a dummy link there, and the
//     Debian CNI plugins put pods on a bridge there. The test reaches the
//     API server through Cluster.Config, whose dialer makes its sockets
//     inside the namespace;
//   - the images are built locally, no registry being reachable: a pause
//     image (the pause program in ./pause, built with the go command) and
//     internal/testimage's busybox (BusyboxImage), both imported into
//     containerd's k8s.io namespace. Pods must use imagePullPolicy Never.
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
