package operator

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"strata.dev/strata/internal/assess"
	"strata.dev/strata/internal/kube/apply"
	"strata.dev/strata/internal/kube/crd"
	"strata.dev/strata/internal/kube/render"
)

// Names the operator uses in the cluster.
const (
	// Set is the apply set of the operator's objects.
	Set = "strata-operator"
	// Finalizer holds a deleted Workload until the controller has cleaned up after it.
	Finalizer = "strata.dev/operator"
	// AnnotationForce on a Workload applies it despite an assessment violation.
	AnnotationForce = "strata.dev/force"
	// ControllerName names the controller in logs and metrics.
	ControllerName = "strata"
	// LeaderElectionID names the Lease that elects the active replica.
	LeaderElectionID = "strata-operator.strata.dev"
)

// Options tune the operator.
type Options struct {
	// Namespace to watch; empty watches every namespace.
	Namespace string
	// RuntimeClass of sandbox-tier pods. Default render.DefaultRuntimeClass.
	RuntimeClass string
	// Engine decides tiers. Default assess.Default().
	Engine *assess.Engine
	// Now is the clock of condition times. Default time.Now.
	Now func() time.Time
	// Scaler tunes the predictive scaler.
	Scaler ScalerOptions
}

func (o Options) withDefaults() Options {
	if o.RuntimeClass == "" {
		o.RuntimeClass = render.DefaultRuntimeClass
	}
	if o.Engine == nil {
		o.Engine = assess.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// NewScheme knows Kubernetes' built-in types, KubeVirt's core/v1 and strata's resources.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, kubevirtv1.AddToScheme, crd.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// operatorObjects selects the objects the operator applied.
var operatorObjects = labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy, apply.LabelApplySet: Set})

// CacheOptions limit the manager's cache to namespace (all when empty) and, for the kinds the
// controller watches besides its own resources, to the objects it applied.
func CacheOptions(namespace string) cache.Options {
	o := cache.Options{ByObject: map[client.Object]cache.ByObject{
		&appsv1.Deployment{}:         {Label: operatorObjects},
		&appsv1.StatefulSet{}:        {Label: operatorObjects},
		&kubevirtv1.VirtualMachine{}: {Label: operatorObjects},
	}}
	if namespace != "" {
		o.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	}
	return o
}

// Setup adds the controller, and the predictive scaler unless opts.Scaler.Disabled, to mgr.
// VirtualMachines are watched only when the cluster serves
// them (KubeVirt is installed); VM-tier workloads fail to apply otherwise, and say so.
func Setup(mgr ctrl.Manager, opts Options) error {
	opts = opts.withDefaults()
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), HTTPClient: mgr.GetHTTPClient()})
	if err != nil {
		return fmt.Errorf("operator: client: %w", err)
	}
	r := &Reconciler{cached: mgr.GetClient(), direct: direct, opts: opts}
	if !opts.Scaler.Disabled {
		so := opts.Scaler.withDefaults()
		if so.Pods == nil {
			so.Pods = mgr.GetAPIReader() // uncached: pods are read once per decision round, not watched
		}
		if so.Source == nil {
			src, err := NewMetricsSource(mgr.GetConfig(), MetricsOptions{Step: so.Interval})
			if err != nil {
				return fmt.Errorf("operator: %w", err)
			}
			so.Source = src
		}
		if err := mgr.Add(NewScaler(mgr.GetClient(), opts.Namespace, so, mgr.GetLogger().WithName("predictive-scaler"))); err != nil {
			return fmt.Errorf("operator: predictive scaler: %w", err)
		}
	}
	toNamespace := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace()}}}
	})
	applied := builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
		return operatorObjects.Matches(labels.Set(o.GetLabels()))
	}))
	b := ctrl.NewControllerManagedBy(mgr).Named(ControllerName).
		Watches(&crd.Workload{}, toNamespace).
		Watches(&crd.Segment{}, toNamespace).
		Watches(&appsv1.Deployment{}, toNamespace, applied).
		Watches(&appsv1.StatefulSet{}, toNamespace, applied)
	if _, err := mgr.GetRESTMapper().RESTMapping(apply.KindVirtualMachine.GroupKind(), apply.KindVirtualMachine.Version); err == nil {
		b = b.Watches(&kubevirtv1.VirtualMachine{}, toNamespace, applied)
	} else if !meta.IsNoMatchError(err) {
		return fmt.Errorf("operator: is KubeVirt installed: %w", err)
	} else {
		mgr.GetLogger().Info("KubeVirt's VirtualMachine is not served: VM-tier workloads cannot be applied")
	}
	return b.Complete(r)
}

// Reconciler reconciles the strata resources of one namespace.
type Reconciler struct {
	cached client.Client // the manager's: reads strata's resources from the cache, writes them
	direct client.Client // reads and applies the rendered objects without a cache
	opts   Options
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// log is the reconcile's logger.
func log(ctx context.Context) logr.Logger { return ctrl.LoggerFrom(ctx) }
