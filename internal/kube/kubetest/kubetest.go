// Package kubetest is test support, not part of strata proper: it runs a
// real Kubernetes control plane for a test binary, with strata's and
// KubeVirt's CustomResourceDefinitions installed, so that code which renders
// or applies Kubernetes objects is tested against the API server's own
// validation, defaulting and server-side apply rather than a fake.
//
// Terms:
//
//   - the control plane is one etcd and one kube-apiserver (Version),
//     started by controller-runtime's envtest with certificates of its own.
//     Nothing else runs: no scheduler, no controllers, no nodes. Deployments
//     get no Pods, a deleted namespace stays Terminating, nothing is garbage
//     collected; a test that needs a controller's effect (a status, say)
//     writes it itself, as the controller would;
//   - the assets directory holds the kube-apiserver and etcd binaries
//     (Assets); `make host-setup` builds them (hack/kube-binaries.sh);
//   - the test directory (Env.Dir) is a fresh directory under os.TempDir
//     (strata-kube-*) holding etcd's data, the API server's certificates
//     and the PID of the test binary that owns it. Start removes the test
//     directories, and stops the processes, of test binaries that died
//     without tearing down (a `go test -timeout` panic);
//   - the CRDs are those of strata.dev/strata/deploy/crds: strata's
//     Workload and Segment (strata.dev/v1alpha1) and KubeVirt's
//     VirtualMachine and VirtualMachineInstance (kubevirt.io/v1), all with
//     structural schemas, so unknown fields are pruned and wrong types
//     rejected;
//   - a test namespace is a namespace made for one test (Env.Namespace) and
//     deleted when it ends.
//
// A test binary starts one control plane (6-9 s on 2 cores, 300 MB), in
// TestMain, and gives each test a namespace of its own:
//
//	var env kubetest.Env
//
//	func TestMain(m *testing.M) { os.Exit(env.Main(m)) }
//
//	func TestApply(t *testing.T) {
//		c, ns := env.Client(t), env.Namespace(t)
//		...
//	}
//
// When the binaries are missing, Main still runs the tests and Need (which
// Client and Namespace call) skips them, naming `make host-setup`; on CI
// (CI=true), whose host-setup always builds them, Main fails instead.
// Teardown, at the end or on SIGINT/SIGTERM, stops the control plane, kills
// any process of it still running, and deletes the test directory.
package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"strata.dev/strata/deploy/crds"
	"strata.dev/strata/internal/testmain"
)

// dirPattern names test directories (os.MkdirTemp's pattern).
const dirPattern = "strata-kube-*"

// Timeouts for the control plane's processes. Two busy cores and -race
// slow a start down well past envtest's 20 s default.
const (
	startTimeout = 90 * time.Second
	stopTimeout  = 20 * time.Second
)

// Env is a running control plane and what the tests need to use it. Start
// (or Main) fills it.
type Env struct {
	Dir    string          // the test directory
	Assets string          // the assets directory the binaries came from
	Config *rest.Config    // an administrator's access to the API server
	Scheme *runtime.Scheme // Kubernetes' built-in types, apiextensions/v1 and KubeVirt's core/v1
	// Started is how long Start took: etcd, the API server, and the CRDs
	// installed and served.
	Started time.Duration
	// Skip says why this host cannot run the control plane; Main sets it
	// instead of starting one, and Need skips with it.
	Skip string

	client client.Client
	run    *running // the started control plane; nil before Start
}

// running is what Teardown needs of a started control plane.
type running struct {
	env *envtest.Environment

	once sync.Once
	err  error
}

// NewScheme returns a scheme that knows Kubernetes' built-in types,
// apiextensions/v1 (CRDs) and KubeVirt's core/v1 (VirtualMachine and
// friends). strata's own types are not Go objects of a scheme: use
// unstructured objects for them.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		apiextensionsv1.AddToScheme,
		kubevirtv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Start starts a control plane in a new test directory, installs the CRDs
// and waits until they are served. The caller must call Teardown. Start
// fails, wrapping ErrNoAssets, when the binaries are missing.
func Start() (*Env, error) {
	begin := time.Now()
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	defs, err := crds.Decode()
	if err != nil {
		return nil, err
	}
	scheme, err := NewScheme()
	if err != nil {
		return nil, fmt.Errorf("kube test harness: %w", err)
	}
	reapOrphans()
	dir, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		return nil, fmt.Errorf("kube test harness: %w", err)
	}
	te := newEnvironment(assets, dir, scheme, defs)
	e := &Env{Dir: dir, Assets: assets, Scheme: scheme, run: &running{env: te}}
	if err := makeTestDir(dir); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("kube test harness: %w", err)
	}
	cfg, err := te.Start()
	if err != nil {
		err = fmt.Errorf("kube test harness: start the control plane (binaries in %s): %w", assets, err)
		if terr := e.Teardown(); terr != nil {
			err = errors.Join(err, terr)
		}
		return nil, err
	}
	// envtest writes webhook serving certificates into a directory of its
	// own under os.TempDir even when there are no webhooks. There are none
	// here: remove it now, not at Stop, which a crashed test binary never
	// reaches.
	_ = os.RemoveAll(te.WebhookInstallOptions.LocalServingCertDir)
	te.WebhookInstallOptions.LocalServingCertDir = ""
	e.Config = cfg
	e.client, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		err = fmt.Errorf("kube test harness: client: %w", err)
		return nil, errors.Join(err, e.Teardown())
	}
	e.Started = time.Since(begin)
	return e, nil
}

// makeTestDir fills a new test directory: the owner file (this process)
// and the directories etcd and the API server keep their files in.
func makeTestDir(dir string) error {
	for _, sub := range []string{"etcd", "apiserver"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
}

// newEnvironment configures envtest for the binaries in assets and the test
// directory dir.
func newEnvironment(assets, dir string, scheme *runtime.Scheme, defs []*apiextensionsv1.CustomResourceDefinition) *envtest.Environment {
	te := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		Scheme:                   scheme,
		CRDs:                     defs,
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  stopTimeout,
	}
	// Explicit paths: KUBEBUILDER_ASSETS, which envtest would otherwise
	// prefer, must not pick other binaries behind Assets' back. Explicit
	// directories keep every file inside the test directory.
	te.ControlPlane.Etcd = &envtest.Etcd{
		Path:    filepath.Join(assets, "etcd"),
		DataDir: filepath.Join(dir, "etcd"),
	}
	te.ControlPlane.APIServer = &envtest.APIServer{
		Path:    filepath.Join(assets, "kube-apiserver"),
		CertDir: filepath.Join(dir, "apiserver"),
	}
	return te
}

// Main is TestMain's work: it starts the control plane (or, when the
// binaries are missing, sets Skip and starts none), runs the tests, tears
// down, and returns the exit code for os.Exit. On CI (CI=true) missing
// binaries fail the run rather than skip it. A SIGINT or SIGTERM tears down
// before the process exits.
func (e *Env) Main(m *testing.M) int {
	// controller-runtime complains, with a stack trace, when nothing set
	// its logger; the tests read errors, not its logs.
	ctrllog.SetLogger(logr.Discard())
	started, err := Start()
	if errors.Is(err, ErrNoAssets) && os.Getenv("CI") != "true" {
		*e = Env{Skip: err.Error()}
		return m.Run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*e = *started
	fmt.Fprintf(os.Stderr, "kubetest: Kubernetes %s control plane up in %.1fs (%d CRDs)\n",
		Version, e.Started.Seconds(), len(e.run.env.CRDs))
	return testmain.Run(m, "kube test harness", e.Teardown)
}

// Teardown stops the control plane, kills any of its processes still
// running and deletes the test directory. It reports what it could not
// clean; calling it again returns the same result.
func (e *Env) Teardown() error {
	if e.run == nil {
		return nil
	}
	e.run.once.Do(func() { e.run.err = e.teardown() })
	return e.run.err
}

func (e *Env) teardown() error {
	var problems []string
	if err := e.run.env.Stop(); err != nil {
		problems = append(problems, "stop: "+err.Error())
	}
	for _, pid := range processesNaming(e.Dir) {
		problems = append(problems, fmt.Sprintf("process %d still running: killed", pid))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := os.RemoveAll(e.Dir); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return errors.New("kube test harness: teardown: " + strings.Join(problems, "; "))
	}
	return nil
}

// processesNaming returns the processes whose command line names a path
// inside dir: etcd and kube-apiserver name the test directory in their flags.
func processesNaming(dir string) []int {
	inside := []byte(filepath.Clean(dir) + "/")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, inside) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ownerFile is the file in a test directory that holds the PID of the test
// binary that made it.
const ownerFile = "owner.pid"

// reapOrphans stops the control planes of test binaries that died without
// tearing down (a `go test -timeout` panic, a SIGKILL): for each test
// directory whose owner is gone, it kills the processes naming it and
// removes it. A directory without an owner file is still being made.
func reapOrphans() {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), dirPattern))
	if err != nil {
		return
	}
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || alive(pid) {
			continue
		}
		for _, p := range processesNaming(dir) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		_ = os.RemoveAll(dir)
		fmt.Fprintf(os.Stderr, "kubetest: removed %s, left by test process %d that is gone\n", dir, pid)
	}
}

// alive reports whether a process with this PID exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Need skips tb when the host cannot run the control plane, and fails it
// when Main or Start has not run.
func (e *Env) Need(tb testing.TB) {
	tb.Helper()
	if e.Skip != "" {
		tb.Skip("skipping: " + e.Skip)
	}
	if e.Config == nil {
		tb.Fatal("no control plane: call Env.Main from TestMain (or Start)")
	}
}

// Client returns a client of the API server (after Need) that knows the
// types of Env.Scheme. It is shared by all tests and safe to use at once.
func (e *Env) Client(tb testing.TB) client.Client {
	tb.Helper()
	e.Need(tb)
	return e.client
}

// Namespace creates a test namespace (after Need), named after the test
// with a random suffix, and deletes it when the test ends. With no
// namespace controller running, a deleted namespace stays Terminating and
// its objects stay in etcd until the control plane stops; names never
// repeat, so that does no harm.
func (e *Env) Namespace(tb testing.TB) string {
	tb.Helper()
	e.Need(tb)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: namespacePrefix(tb.Name())}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.client.Create(ctx, ns); err != nil {
		tb.Fatalf("create a test namespace: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.client.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
			tb.Errorf("delete test namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

var notDNS = regexp.MustCompile(`[^a-z0-9]+`)

// namespacePrefix turns a test name into a namespace's generateName: a
// DNS label prefix short enough for the API server's 5-character suffix.
func namespacePrefix(testName string) string {
	p := notDNS.ReplaceAllString(strings.ToLower(testName), "-")
	p = strings.Trim(p, "-")
	if len(p) > 50 {
		p = strings.TrimRight(p[:50], "-")
	}
	if p == "" {
		p = "test"
	}
	return p + "-"
}
