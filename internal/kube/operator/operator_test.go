package operator

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/kube/crd"
	"strata.dev/strata/internal/kube/kubetest"
)

var env kubetest.Env

func TestMain(m *testing.M) { os.Exit(env.Main(m)) }

// testScalerInterval is the predictive scaler's interval in these tests.
const testScalerInterval = 100 * time.Millisecond

// startOperator runs the operator in this process against the test API server, watching
// namespace ns, until the test ends or it calls the stop function returned. Its predictive
// scaler decides every testScalerInterval; tune changes the options.
func startOperator(t *testing.T, cfg *rest.Config, ns string, leaderElect bool, tune ...func(*Options)) (stop func()) {
	t.Helper()
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         CacheOptions(ns),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		Controller:                    config.Controller{SkipNameValidation: &skip},
		LeaderElection:                leaderElect,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       ns,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Namespace: ns, RuntimeClass: "rc-" + ns, Scaler: ScalerOptions{Interval: testScalerInterval}}
	for _, f := range tune {
		f(&opts)
	}
	if err := Setup(mgr, opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("operator: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// testClient knows strata's resources as well as Kubernetes' and KubeVirt's types.
func testClient(t *testing.T) client.Client {
	t.Helper()
	env.Need(t)
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually retries check until it returns nil, for up to 30 s.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func workload(ns, name string, spec v1alpha1.WorkloadSpec) *crd.Workload {
	doc := &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: name}, Spec: spec}
	return crd.FromDocument(doc, ns)
}

func int32p(n int32) *int32 { return &n }

// ownedBy checks that o is owned by w, as its controller.
func ownedBy(o metav1.Object, w *crd.Workload) error {
	for _, ref := range o.GetOwnerReferences() {
		if ref.UID == w.UID && ref.Kind == v1alpha1.KindWorkload && ref.Controller != nil && *ref.Controller {
			return nil
		}
	}
	return errors.New(o.GetName() + " is not controlled by workload " + w.Name)
}

// condition returns the status of a condition of w ("" when it has none).
func condition(w *crd.Workload, typ string) v1alpha1.Condition {
	if w.Status != nil {
		for _, c := range w.Status.Conditions {
			if c.Type == typ {
				return c
			}
		}
	}
	return v1alpha1.Condition{}
}

// TestOperatorContainer: a Workload becomes a Deployment and a Service owned by it; when the
// deployment controller (here the test) reports the replicas ready, the Workload's status
// says so.
func TestOperatorContainer(t *testing.T) {
	c := testClient(t)
	ns := env.Namespace(t)
	startOperator(t, env.Config, ns, false)
	ctx := context.Background()
	w := workload(ns, "web", v1alpha1.WorkloadSpec{Image: "registry.example/web:1", Replicas: int32p(2),
		Ports: []v1alpha1.Port{{Name: "http", Port: 8080}}})
	if err := c.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	eventually(t, "the Deployment", func() error {
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, &d); err != nil {
			return err
		}
		return ownedBy(&d, w)
	})
	eventually(t, "the finalizer and the first status", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(w), w); err != nil {
			return err
		}
		if len(w.Finalizers) != 1 || w.Finalizers[0] != Finalizer {
			return errors.New("no finalizer")
		}
		if a := condition(w, ConditionAssessed); a.Status != v1alpha1.ConditionTrue || a.Reason != "TierContainer" {
			return errors.New("not assessed: " + a.Message)
		}
		if r := condition(w, ConditionReady); r.Status != v1alpha1.ConditionFalse {
			return errors.New("ready before the Deployment is")
		}
		return nil
	})

	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, UpdatedReplicas: 2}
	if err := c.Status().Update(ctx, &d); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the status from the Deployment", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(w), w); err != nil {
			return err
		}
		st := w.Status
		if st.Tier != v1alpha1.TierContainer || st.Replicas != 2 || st.ReadyReplicas != 2 || st.Phase != v1alpha1.PhaseRunning ||
			condition(w, ConditionReady).Status != v1alpha1.ConditionTrue || condition(w, ConditionDegraded).Status != v1alpha1.ConditionFalse {
			return errors.New("status " + statusString(st))
		}
		return nil
	})
}

func statusString(st *v1alpha1.WorkloadStatus) string {
	if st == nil {
		return "none"
	}
	return string(st.Phase) + " tier " + string(st.Tier)
}

// TestOperatorSandbox: an untrusted Workload runs under the RuntimeClass; deleting the
// Workload removes its objects and, being its last user, the RuntimeClass, then releases the
// Workload.
func TestOperatorSandbox(t *testing.T) {
	c := testClient(t)
	ns := env.Namespace(t)
	startOperator(t, env.Config, ns, false)
	ctx := context.Background()
	w := workload(ns, "plugins", v1alpha1.WorkloadSpec{Image: "registry.example/plugins:1",
		Traits: v1alpha1.Traits{Trust: v1alpha1.TrustUntrusted}})
	if err := c.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	eventually(t, "the sandboxed Deployment", func() error {
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "plugins"}, &d); err != nil {
			return err
		}
		if rc := d.Spec.Template.Spec.RuntimeClassName; rc == nil || *rc != "rc-"+ns {
			return errors.New("no runtimeClassName")
		}
		return ownedBy(&d, w)
	})
	var rc nodev1.RuntimeClass
	if err := c.Get(ctx, types.NamespacedName{Name: "rc-" + ns}, &rc); err != nil {
		t.Fatal(err)
	}
	if len(rc.OwnerReferences) != 0 {
		t.Errorf("the RuntimeClass has owners %v; a cluster-scoped object cannot", rc.OwnerReferences)
	}
	eventually(t, "the sandbox tier in the status", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(w), w); err != nil {
			return err
		}
		if w.Status == nil || w.Status.Tier != v1alpha1.TierSandbox || len(w.Finalizers) == 0 {
			return errors.New("status " + statusString(w.Status))
		}
		return nil
	})

	if err := c.Delete(ctx, w); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Workload released", func() error {
		err := c.Get(ctx, client.ObjectKeyFromObject(w), w)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errors.New("still there")
	})
	for _, o := range []client.Object{&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plugins"}}, &rc} {
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s: %v, want it gone", o, o.GetName(), err)
		}
	}
}

// TestOperatorVM: a VM-tier Workload becomes a VirtualMachine owned by it; its status follows
// the VM's.
func TestOperatorVM(t *testing.T) {
	c := testClient(t)
	ns := env.Namespace(t)
	startOperator(t, env.Config, ns, false)
	ctx := context.Background()
	w := workload(ns, "edge", v1alpha1.WorkloadSpec{Isolation: v1alpha1.Isolation(v1alpha1.TierVM),
		VM: &v1alpha1.VMSource{ContainerDisk: "registry.example/disks/edge:1"}})
	if err := c.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	var vm kubevirtv1.VirtualMachine
	eventually(t, "the VirtualMachine", func() error {
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "edge"}, &vm); err != nil {
			return err
		}
		return ownedBy(&vm, w)
	})
	vm.Status = kubevirtv1.VirtualMachineStatus{Created: true, Ready: true, PrintableStatus: kubevirtv1.VirtualMachineStatusRunning}
	if err := c.Status().Update(ctx, &vm); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the status from the VM", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(w), w); err != nil {
			return err
		}
		st := w.Status
		if st == nil || st.Tier != v1alpha1.TierVM || st.Phase != v1alpha1.PhaseRunning || st.ReadyReplicas != 1 ||
			len(st.Instances) != 1 || st.Instances[0].State != "running" {
			return errors.New("status " + statusString(st))
		}
		return nil
	})
}

// TestOperatorViolation: an explicit tier weaker than the policy's floor is not applied
// without the force annotation, and the status says why.
func TestOperatorViolation(t *testing.T) {
	c := testClient(t)
	ns := env.Namespace(t)
	startOperator(t, env.Config, ns, false)
	ctx := context.Background()
	w := workload(ns, "risky", v1alpha1.WorkloadSpec{Isolation: v1alpha1.Isolation(v1alpha1.TierContainer), Image: "registry.example/risky:1",
		Traits: v1alpha1.Traits{Trust: v1alpha1.TrustUntrusted}})
	if err := c.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the violation in the status", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(w), w); err != nil {
			return err
		}
		if a := condition(w, ConditionAssessed); a.Status != v1alpha1.ConditionFalse || a.Reason != "PolicyViolation" {
			return errors.New("Assessed " + a.Status + " " + a.Reason)
		}
		return nil
	})
	var d appsv1.Deployment
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "risky"}, &d); !apierrors.IsNotFound(err) {
		t.Errorf("the Deployment of a refused workload: %v", err)
	}

	w.Annotations = map[string]string{AnnotationForce: "true"}
	if err := c.Update(ctx, w); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the forced Deployment", func() error {
		return c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "risky"}, &d)
	})
}
