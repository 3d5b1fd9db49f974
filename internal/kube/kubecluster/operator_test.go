package kubecluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/kube/crd"
	"strata.dev/strata/internal/kube/operator"
	"strata.dev/strata/internal/load"
)

// TestOperatorHybrid deploys strata's operator into the cluster as its
// users do (deploy/operator: the built strata command in an image, two
// replicas electing a leader, its least-privilege RBAC, a non-root user and
// a read-only root filesystem) and creates the hybrid example's Segments and
// Workloads as strata.dev resources: it must reconcile them to what `strata
// apply` makes of the same file (TestHybridExample): the container and
// sandbox workloads' pods Ready, the sandbox's under runsc, each Service
// answering with its workload's page, the VM a stored VirtualMachine, and
// each Workload's status counting its ready replicas.
func TestOperatorHybrid(t *testing.T) {
	c := Start(t)
	needRunsc(t, c, "the example has a sandbox")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if err := c.InstallCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	deployed := time.Now()
	ns, err := c.DeployOperator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the operator's 2 pods Ready %.1fs after deploy/operator was applied", time.Since(deployed).Seconds())
	defer func() {
		if t.Failed() {
			t.Logf("the operator's logs:\n%s", c.OperatorLogs(context.Background(), ns))
		}
	}()
	cl := strataClient(t, c)
	leader := operatorLeader(ctx, t, c, ns)
	t.Logf("operator pod %s holds the lease %s", leader, operator.LeaderElectionID)

	file, err := filepath.Abs("../../../examples/hybrid/app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	for _, o := range resources(t, file, "default") {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatalf("create %s %s: %v", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
	want := hybridWorkloads[:3] // wedging is not in the example
	for _, w := range want {
		if _, err := c.WaitReady(ctx, "default", "strata.dev/workload="+w.name, w.replicas); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("every pod Ready %.1fs after the resources were created", time.Since(created).Seconds())

	runtimes, err := c.PodRuntimes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		pods, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "strata.dev/workload=" + w.name})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			rt := runtimes["default/"+p.Name]
			t.Logf("pod %s (workload %s, tier %s) runs under %s", p.Name, w.name, p.Labels["strata.dev/tier"], rt)
			if rt != w.runtime {
				t.Errorf("pod %s of %s runs under %q, want %s", p.Name, w.name, rt, w.runtime)
			}
		}
	}
	askServices(ctx, t, c, "web-client")

	// The operator writes back what the cluster runs.
	for _, w := range want {
		var wl crd.Workload
		for {
			err := cl.Get(ctx, client.ObjectKey{Namespace: "default", Name: w.name}, &wl)
			if err == nil && wl.Status != nil && wl.Status.ReadyReplicas == int32(w.replicas) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("Workload %s's status: %+v (%v), want %d ready replicas", w.name, wl.Status, err, w.replicas)
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Logf("Workload %s: tier %s, phase %s, %d/%d ready", w.name, wl.Status.Tier, wl.Status.Phase, wl.Status.ReadyReplicas, wl.Status.Replicas)
	}
	var vm kubevirtv1.VirtualMachine
	if err := cl.Get(ctx, client.ObjectKey{Namespace: "default", Name: "ledger"}, &vm); err != nil {
		t.Fatalf("the ledger VM: %v", err)
	}
	t.Logf("VirtualMachine ledger stored by the operator; no KubeVirt runs it here")
}

// startOperator runs the operator in this process against c, watching
// every namespace, until the test ends, and returns a client that knows
// strata's resources. The predictive scaler is off (no metrics API serves
// this cluster) unless tune changes the options.
func startOperator(t *testing.T, c *Cluster, tune ...func(*operator.Options)) client.Client {
	t.Helper()
	scheme, err := operator.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	ctrl.SetLogger(testr.New(t))
	skip := true // each test of the process starts an operator of its own
	mgr, err := ctrl.NewManager(c.Config, ctrl.Options{
		Scheme:                 scheme,
		Controller:             config.Controller{SkipNameValidation: &skip},
		Cache:                  operator.CacheOptions(""),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := operator.Options{Scaler: operator.ScalerOptions{Disabled: true}}
	for _, f := range tune {
		f(&opts)
	}
	if err := operator.Setup(mgr, opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator: %v", err)
		}
	})
	return strataClient(t, c)
}

// strataClient returns a client of c that knows strata's resources.
func strataClient(t *testing.T, c *Cluster) client.Client {
	t.Helper()
	scheme, err := operator.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// operatorLeader waits until one of the operator's pods in ns holds its
// leader election's Lease, and returns that pod's name.
func operatorLeader(ctx context.Context, t *testing.T, c *Cluster, ns string) string {
	t.Helper()
	for {
		lease, err := c.Client.CoordinationV1().Leases(ns).Get(ctx, operator.LeaderElectionID, metav1.GetOptions{})
		if err == nil && lease.Spec.HolderIdentity != nil {
			holder := *lease.Spec.HolderIdentity
			pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: OperatorSelector})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pods.Items {
				// controller-runtime names the holder after the pod's host name.
				if strings.HasPrefix(holder, p.Name+"_") || holder == p.Name {
					return p.Name
				}
			}
			t.Fatalf("the lease %s is held by %q, no pod of the operator", operator.LeaderElectionID, holder)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no operator pod holds the lease %s: %v (%v)", operator.LeaderElectionID, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// resources reads file's strata documents as the strata.dev resources of
// namespace ns, Segments first.
func resources(t *testing.T, file, ns string) []client.Object {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	docs, errs := load.Documents(file, data)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var segments, workloads []client.Object
	for _, d := range docs {
		o, errs := load.Decode(d)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		switch v := o.Object.(type) {
		case *v1alpha1.Segment:
			segments = append(segments, crd.SegmentFromDocument(v, ns))
		case *v1alpha1.Workload:
			workloads = append(workloads, crd.FromDocument(v, ns))
		default:
			t.Fatalf("%s: a %T has no resource", file, v)
		}
	}
	return append(segments, workloads...)
}
