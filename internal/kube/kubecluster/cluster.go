package kubecluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"strata.dev/strata/internal/kube/kubetest"
	"strata.dev/strata/internal/testimage"
)

// Binaries are the programs the assets directory (kubetest.Assets' one)
// must hold for a cluster.
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"}

// hostTools are the host's programs the harness runs, and the Debian
// package of each.
var hostTools = []struct{ path, pkg string }{
	{"/usr/bin/containerd", "containerd"},
	{"/usr/bin/containerd-shim-runc-v2", "containerd"},
	{"/usr/sbin/runc", "runc"},
	{"/usr/bin/nsenter", "util-linux"},
	{"/usr/sbin/ip", "iproute2"},
	{"/usr/lib/cni/bridge", "containernetworking-plugins"},
	{"/usr/lib/cni/host-local", "containernetworking-plugins"},
	{"/usr/lib/cni/portmap", "containernetworking-plugins"},
	{"/usr/lib/cni/loopback", "containernetworking-plugins"},
}

// dirPattern names cluster directories (os.MkdirTemp's pattern); the
// directory's base name also names the network namespace and the cgroup
// the pods run under.
const dirPattern = "strata-kc-*"

// Timeouts. Two busy cores slow everything down.
const (
	startTimeout = 3 * time.Minute // each component until it answers
	stopTimeout  = 15 * time.Second
)

// Cluster is a running single-node cluster.
type Cluster struct {
	Dir    string       // the cluster directory: configuration, state, logs
	Name   string       // the network namespace's and the pods' cgroup's name
	Config *rest.Config // an administrator's access; it dials inside the namespace
	Client kubernetes.Interface
	// Runsc is the runsc behind the GVisorHandler runtime handler; "" when
	// the host has none, and NoRunsc says why (for t.Skip).
	Runsc, NoRunsc string
	// NoPolicyEngine says why EnforceNetworkPolicies cannot run (the
	// engine was not built); "" when it can.
	NoPolicyEngine string
	// Timings: from Start's call until the API server answered, and until
	// the node was Ready.
	APIUp, NodeReady time.Duration

	pki     pki
	procs   []*proc // in start order
	netnsFD *os.File
	stopped bool
	stopErr error
}

// proc is one component's process.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// Skip returns why this host cannot run a cluster ("" when it can): not
// root, a binary or a host tool missing. It says what to run or install.
func Skip() string {
	if os.Geteuid() != 0 {
		return "a test cluster needs root (network namespace, containerd, cgroups)"
	}
	dir, err := kubetest.Assets()
	if err != nil {
		return err.Error()
	}
	for _, b := range Binaries {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return fmt.Sprintf("no %s in %s: run `STRATA_KUBE_CLUSTER=1 hack/kube-binaries.sh` (it builds the cluster binaries)", b, dir)
		}
	}
	for _, t := range hostTools {
		if _, err := os.Stat(t.path); err != nil {
			return fmt.Sprintf("no %s: install Debian's %s (make host-setup)", t.path, t.pkg)
		}
	}
	if _, err := goTool(); err != nil {
		return err.Error()
	}
	if _, err := os.Stat(testimage.Busybox); err != nil {
		return testimage.ErrNoBusybox.Error()
	}
	return ""
}

// Start starts a cluster for tb, skipping tb when the host cannot run one
// (Skip), and stops it when tb ends. On a failure it logs the tail of each
// component's log.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	if why := Skip(); why != "" {
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			// CI's host-setup builds every binary: a missing one is a defect there.
			tb.Fatal("on CI the test cluster must run: " + why)
		}
		tb.Skip("skipping: " + why)
	}
	c, err := start(tb)
	if c != nil {
		tb.Cleanup(func() {
			if tb.Failed() {
				c.logTails(tb)
			}
			if err := c.Stop(); err != nil {
				tb.Error(err)
			}
		})
	}
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func start(tb testing.TB) (*Cluster, error) {
	begin := time.Now()
	assets, err := kubetest.Assets()
	if err != nil {
		return nil, err
	}
	reapOrphans(tb)
	dir, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Name: filepath.Base(dir)}
	var shim string
	c.Runsc, shim, c.NoRunsc = findGVisor(assets)
	var engine string
	engine, c.NoPolicyEngine = policyEngineBinary(assets)
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return c, err
	}
	for _, sub := range []string{"logs", "pki", "etcd", "cni/net.d", "cni/ipam", "containerd", "kubelet/pod-logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return c, err
		}
	}
	if err := c.makeNetns(); err != nil {
		return c, err
	}
	if engine != "" {
		if why := c.probeQueue(); why != "" {
			engine, c.NoPolicyEngine = "", why
		}
	}
	if c.pki, err = makePKI(filepath.Join(dir, "pki"), []net.IP{net.ParseIP(nodeIP), net.ParseIP(firstSvcIP)}); err != nil {
		return c, fmt.Errorf("certificates: %w", err)
	}
	kc, err := writeFile(dir, "admin.kubeconfig", kubeconfig(c.pki))
	if err != nil {
		return c, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// containerd first: importing the images overlaps etcd's and the API
	// server's start.
	cfg, err := writeFile(dir, "containerd.toml", containerdConfig(dir, c.Runsc != ""))
	if err != nil {
		return c, err
	}
	if _, err := writeFile(filepath.Join(dir, "cni", "net.d"), "10-strata-kc.conflist", cniConfig(dir)); err != nil {
		return c, err
	}
	// containerd finds shims on its PATH: gVisor's wrapper is in dir/bin.
	env := os.Environ()
	if c.Runsc != "" {
		if env, err = c.writeGVisor(shim, env); err != nil {
			return c, err
		}
	}
	if err := c.runEnv(env, "containerd", "/usr/bin/containerd", "--config", cfg); err != nil {
		return c, err
	}
	bin := func(name string) string { return filepath.Join(assets, name) }
	if err := c.run("etcd", bin("etcd"),
		"--name", "default", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "default=http://127.0.0.1:2380", "--unsafe-no-fsync"); err != nil {
		return c, err
	}
	p := c.pki
	if err := c.run("kube-apiserver", bin("kube-apiserver"),
		"--etcd-servers", "http://127.0.0.1:2379",
		"--bind-address", "0.0.0.0", "--secure-port", strconv.Itoa(apiPort), "--advertise-address", nodeIP,
		"--tls-cert-file", p.path("apiserver.crt"), "--tls-private-key-file", p.path("apiserver.key"),
		"--client-ca-file", p.path("ca.crt"),
		"--service-account-key-file", p.path("sa.pub"), "--service-account-signing-key-file", p.path("sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range", serviceCIDR,
		"--authorization-mode", "Node,RBAC",
		"--kubelet-client-certificate", p.path("admin.crt"), "--kubelet-client-key", p.path("admin.key"),
		// The kubelet's Node has no DNS name this namespace can resolve:
		// reach it (logs, exec) at its address.
		"--kubelet-preferred-address-types", "InternalIP",
		// The aggregation layer, for metrics-server (ServeMetrics): the
		// API server forwards metrics.k8s.io with the front-proxy
		// certificate and the user in headers, straight to the
		// endpoint's address (no kube-proxy rule serves the API server's
		// own connections).
		"--requestheader-client-ca-file", p.path("ca.crt"), "--requestheader-allowed-names", frontProxyName,
		"--requestheader-username-headers", "X-Remote-User", "--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--proxy-client-cert-file", p.path("front-proxy.crt"), "--proxy-client-key-file", p.path("front-proxy.key"),
		"--enable-aggregator-routing=true",
		"--allow-privileged=true", "--cert-dir", filepath.Join(dir, "pki", "apiserver")); err != nil {
		return c, err
	}
	if err := c.importImages(ctx, engine); err != nil {
		return c, err
	}
	if err := c.connect(); err != nil {
		return c, err
	}
	if err := c.waitAPI(ctx); err != nil {
		return c, err
	}
	c.APIUp = time.Since(begin)
	tb.Logf("kubecluster: API server up after %.1fs", c.APIUp.Seconds())
	if err := c.run("kube-controller-manager", bin("kube-controller-manager"),
		"--kubeconfig", kc, "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--authentication-skip-lookup",
		"--service-account-private-key-file", p.path("sa.key"), "--root-ca-file", p.path("ca.crt"),
		"--use-service-account-credentials=false", "--service-cluster-ip-range", serviceCIDR,
		"--cert-dir", filepath.Join(dir, "pki", "controller-manager")); err != nil {
		return c, err
	}
	if err := c.run("kube-scheduler", bin("kube-scheduler"),
		"--kubeconfig", kc, "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--authentication-skip-lookup",
		"--cert-dir", filepath.Join(dir, "pki", "scheduler")); err != nil {
		return c, err
	}
	if err := c.makeCgroupRoot(); err != nil {
		return c, err
	}
	kcfg, err := writeFile(dir, "kubelet.yaml", kubeletConfig(dir, "/"+c.Name, p))
	if err != nil {
		return c, err
	}
	if err := c.run("kubelet", bin("kubelet"),
		"--config", kcfg, "--kubeconfig", kc,
		"--root-dir", filepath.Join(dir, "kubelet", "root"), "--cert-dir", filepath.Join(dir, "kubelet", "pki"),
		"--node-ip", nodeIP, "--hostname-override", nodeName, "--v", "2"); err != nil {
		return c, err
	}
	// kube-proxy in nftables mode (docs/kubernetes-tests.md says why):
	// conntrack's table size is a sysctl of the host's initial network
	// namespace only, so it must leave the table alone.
	if err := c.run("kube-proxy", bin("kube-proxy"),
		"--kubeconfig", kc, "--proxy-mode", "nftables", "--conntrack-max-per-core", "0",
		"--hostname-override", nodeName, "--cluster-cidr", podSubnet,
		"--metrics-bind-address", "127.0.0.1:10249", "--healthz-bind-address", "127.0.0.1:10256"); err != nil {
		return c, err
	}
	if err := c.waitNodeReady(ctx); err != nil {
		return c, err
	}
	c.NodeReady = time.Since(begin)
	tb.Logf("kubecluster: node %s Ready after %.1fs", nodeName, c.NodeReady.Seconds())
	return c, nil
}

// writeGVisor writes what gVisor's shim needs (its configuration, the
// wrapper containerd runs it through and the wrapper's uid_map) and returns
// env with dir/bin first on PATH.
func (c *Cluster) writeGVisor(shim string, env []string) ([]string, error) {
	cd := filepath.Join(c.Dir, "containerd")
	if _, err := writeFile(cd, "runsc.toml", runscConfig(c.Dir, c.Runsc)); err != nil {
		return nil, err
	}
	if _, err := writeFile(cd, "uid_map", fakeUIDMap); err != nil {
		return nil, err
	}
	bin := filepath.Join(c.Dir, "bin")
	if err := os.MkdirAll(bin, 0o700); err != nil {
		return nil, err
	}
	w := filepath.Join(bin, ShimBinary)
	if err := os.WriteFile(w, []byte(shimWrapper(c.Dir, shim)), 0o700); err != nil { //nolint:gosec // G306: a program
		return nil, err
	}
	out := slices.Clone(env)
	for i, e := range out {
		if p, ok := strings.CutPrefix(e, "PATH="); ok {
			out[i] = "PATH=" + bin + ":" + p
			return out, nil
		}
	}
	return append(out, "PATH="+bin+":/usr/sbin:/usr/bin:/sbin:/bin"), nil
}

// makeNetns creates the cluster's network namespace, named c.Name, with
// loopback up and the node's address on a veth link that also carries the
// default route (the API server and the kubelet pick their addresses from
// it).
func (c *Cluster) makeNetns() error {
	steps := [][]string{
		{"netns", "add", c.Name},
		{"-n", c.Name, "link", "set", "lo", "up"},
		{"-n", c.Name, "link", "add", nodeLink, "type", "veth", "peer", "name", nodeLink + "p"},
		{"-n", c.Name, "link", "set", nodeLink + "p", "up"},
		{"-n", c.Name, "addr", "add", nodeCIDR, "dev", nodeLink},
		{"-n", c.Name, "link", "set", nodeLink, "up"},
		{"-n", c.Name, "route", "add", "default", "dev", nodeLink},
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(s, " "), err, bytes.TrimSpace(out))
		}
	}
	// Pods on the bridge reach each other at layer 2: bridged IPv4 must
	// pass the IP hooks, where kube-proxy translates a Service's reply and
	// the NetworkPolicy engine judges connections between pods.
	for _, s := range []struct{ key, value string }{
		{"net/bridge/bridge-nf-call-iptables", "1"},
		{"net/ipv4/ip_forward", "1"},
	} {
		set := exec.Command("nsenter", "--net=/run/netns/"+c.Name, "sh", "-c", //nolint:gosec // G204: fixed sysctls
			"echo "+s.value+" > /proc/sys/"+s.key)
		if out, err := set.CombinedOutput(); err != nil {
			return fmt.Errorf("sysctl %s in %s: %w: %s", s.key, c.Name, err, bytes.TrimSpace(out))
		}
	}
	f, err := os.Open("/run/netns/" + c.Name)
	if err != nil {
		return err
	}
	c.netnsFD = f
	return nil
}

// makeCgroupRoot creates the cgroup the kubelet puts its pods under (its
// cgroupRoot, /c.Name) in every cgroup v1 hierarchy; the kubelet requires
// it to exist. cpuset needs its CPUs and memory nodes copied from the
// parent before a process can join a child.
func (c *Cluster) makeCgroupRoot() error {
	for _, h := range cgroupHierarchies() {
		d := filepath.Join(h, c.Name)
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) { //nolint:gosec // G301: a cgroup, which the kubelet and runc descend into
			return fmt.Errorf("cgroup root: %w", err)
		}
		if filepath.Base(h) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join(h, f))
				if err != nil {
					return fmt.Errorf("cgroup root: %w", err)
				}
				if err := os.WriteFile(filepath.Join(d, f), b, 0o600); err != nil { //nolint:gosec // G703: the cgroup made above
					return fmt.Errorf("cgroup root: %w", err)
				}
			}
		}
	}
	return nil
}

// cgroupHierarchies returns the mount points of the host's cgroup
// hierarchies (v1 controllers and the unified one), one per hierarchy.
func cgroupHierarchies() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		i := slices.Index(f, "-")
		if i < 0 || i+1 >= len(f) || (f[i+1] != "cgroup" && f[i+1] != "cgroup2") {
			continue
		}
		if !slices.Contains(out, f[4]) && strings.HasPrefix(f[4], "/sys/fs/cgroup") {
			out = append(out, f[4])
		}
	}
	return out
}

// run starts a component inside the cluster's network namespace, its
// output going to logs/NAME.log.
func (c *Cluster) run(name, path string, args ...string) error {
	return c.runEnv(nil, name, path, args...)
}

// runEnv is run with the environment env (nil: the test process's).
func (c *Cluster) runEnv(env []string, name, path string, args ...string) error {
	logPath := filepath.Join(c.Dir, "logs", name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + c.Name, path}, args...)...) //nolint:gosec // G204: the cluster's own binaries and flags
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = c.Dir
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); close(p.done) }()
	c.procs = append(c.procs, p)
	return nil
}

// exited returns the first component that has exited, or nil.
func (c *Cluster) exited() *proc {
	for _, p := range c.procs {
		select {
		case <-p.done:
			return p
		default:
		}
	}
	return nil
}

// dial connects from inside the cluster's network namespace: the socket is
// made on a thread that entered it. The thread stays locked and exits with
// the goroutine, so no other goroutine ever runs in the namespace.
func (c *Cluster) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(c.netnsFD.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("enter network namespace %s: %w", c.Name, err)}
			return
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		ch <- result{conn, err}
	}()
	r := <-ch
	return r.conn, r.err
}

// connect makes the administrator's client.
func (c *Cluster) connect() error {
	p := c.pki
	c.Config = &rest.Config{
		Host: fmt.Sprintf("https://%s:%d", nodeIP, apiPort),
		TLSClientConfig: rest.TLSClientConfig{
			CAFile: p.path("ca.crt"), CertFile: p.path("admin.crt"), KeyFile: p.path("admin.key"),
		},
		Dial:    c.dial,
		QPS:     50,
		Burst:   100,
		Timeout: 30 * time.Second,
	}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	c.Client = cs
	return nil
}

// poll calls check every half second until it returns true, an error, a
// component exits or ctx ends.
func (c *Cluster) poll(ctx context.Context, what string, check func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var last error
	for {
		if p := c.exited(); p != nil {
			return fmt.Errorf("waiting for %s: %s exited (%v); its log: %s", what, p.name, p.cmd.ProcessState, p.log)
		}
		ok, err := check(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last error: %w)", what, ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *Cluster) waitAPI(ctx context.Context) error {
	return c.poll(ctx, "the API server", func(ctx context.Context) (bool, error) {
		body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", err
	})
}

func (c *Cluster) waitNodeReady(ctx context.Context) error {
	return c.poll(ctx, "node "+nodeName+" Ready", func(ctx context.Context) (bool, error) {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				if cond.Status == corev1.ConditionTrue {
					return true, nil
				}
				return false, fmt.Errorf("node not ready: %s: %s", cond.Reason, cond.Message)
			}
		}
		return false, errors.New("node has no Ready condition yet")
	})
}

// importImages builds the pause program and imports the pause and busybox
// images, and the NetworkPolicy engine's when there is an engine (its
// binary's path), into containerd's k8s.io namespace, unpacked for
// overlayfs.
func (c *Cluster) importImages(ctx context.Context, engine string) error {
	goBin, err := goTool()
	if err != nil {
		return err
	}
	_, file, _, _ := runtime.Caller(0)
	pauseBin := filepath.Join(c.Dir, "pause")
	build := exec.Command(goBin, "build", "-trimpath", "-ldflags", "-s -w", "-o", pauseBin, "./pause")
	build.Dir = filepath.Dir(file)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build the pause program: %w: %s", err, out)
	}
	program, err := os.ReadFile(pauseBin)
	if err != nil {
		return err
	}
	var pause, busybox, example bytes.Buffer
	if err := testimage.BuildProgram(&pause, PauseImage, "pause", program); err != nil {
		return err
	}
	if err := testimage.Build(&busybox, BusyboxImage); err != nil {
		return err
	}
	if err := testimage.Build(&example, ExampleImage); err != nil {
		return err
	}
	sock := containerdSocket(c.Dir)
	var client *ctr.Client
	if err := c.poll(ctx, "containerd", func(context.Context) (bool, error) {
		if _, err := os.Stat(sock); err != nil {
			return false, err
		}
		cl, err := ctr.New(sock, ctr.WithTimeout(5*time.Second))
		if err != nil {
			return false, err
		}
		client = cl
		return true, nil
	}); err != nil {
		return err
	}
	defer client.Close()
	images := []*bytes.Buffer{&pause, &busybox, &example}
	if engine != "" {
		b, err := os.ReadFile(engine)
		if err != nil {
			return err
		}
		var img bytes.Buffer
		if err := testimage.BuildProgram(&img, PolicyEngineImage, policyEngine, b); err != nil {
			return err
		}
		images = append(images, &img)
	}
	for _, img := range images {
		if err := importImage(ctx, client, img); err != nil {
			return err
		}
	}
	return nil
}

// importImage imports the OCI layout tarball img into containerd's k8s.io
// namespace, where the kubelet finds its images, under the name the layout
// gives it, and unpacks it for overlayfs.
func importImage(ctx context.Context, client *ctr.Client, img io.Reader) error {
	nctx := namespaces.WithNamespace(ctx, "k8s.io")
	imgs, err := client.Import(nctx, img, ctr.WithImageRefTranslator(func(ref string) string { return ref }))
	if err != nil {
		return fmt.Errorf("import an image into containerd: %w", err)
	}
	for _, i := range imgs {
		if err := ctr.NewImage(client, i).Unpack(nctx, "overlayfs"); err != nil {
			return fmt.Errorf("unpack %s: %w", i.Name, err)
		}
	}
	return nil
}

// goTool returns the go command, which builds the pause program.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := "/usr/local/go/bin/go"
	if _, err := os.Stat(p); err != nil {
		return "", errors.New("no go command on PATH nor at " + p + ": the harness builds its pause image with it")
	}
	return p, nil
}

// logTails logs the last lines of each component's log.
func (c *Cluster) logTails(tb testing.TB) {
	for _, p := range c.procs {
		b, err := os.ReadFile(p.log)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		tb.Logf("kubecluster: last lines of %s:\n%s", p.log, strings.Join(lines, "\n"))
	}
}

// stop sends SIGTERM to a component and waits up to d for it to exit, then
// kills it; it reports whether SIGTERM was enough.
func (p *proc) stop(d time.Duration) bool {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(d):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return false
}
