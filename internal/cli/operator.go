package cli

import (
	"fmt"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"strata.dev/strata/internal/kube/operator"
	"strata.dev/strata/internal/kube/render"
)

func newOperator(s Streams) *cobra.Command {
	var (
		kubeconfigPath, namespace, metricsAddr, probeAddr string
		leaderElect                                       bool
		leaderElectionNamespace, runtimeClass, policy     string
		scalerInterval                                    time.Duration
		noPredictive                                      bool
	)
	cmd := &cobra.Command{
		Use:   "operator [--kubeconfig PATH] [--namespace NS] [--leader-elect] [--scaler-interval 15s] [--no-predictive]",
		Short: "Run strata as a Kubernetes operator for Workload and Segment resources",
		Long: `Operator runs strata inside a Kubernetes cluster: it watches strata.dev/v1alpha1
Workload and Segment resources (the CRDs in deploy/crds), renders them as strata export
kubernetes does, applies the objects with server-side apply (field manager strata-operator),
owned by the resources they come from, and writes each Workload's status: tier and reasons,
replicas, phase, and the conditions Assessed, Ready and Degraded.

A Workload whose explicit isolation violates the policy is not applied unless it is annotated
strata.dev/force: "true". deploy/operator holds the manifests to run it in the cluster
(kubectl apply -k deploy/operator) with least-privilege RBAC. It runs until SIGINT or SIGTERM.

spec.scaling becomes a HorizontalPodAutoscaler, which scales reactively on CPU utilization.
For Workloads with spec.scaling.predictive: true the operator also runs the predictive
scaler, the same decision as strata serve's: every --scaler-interval it samples the CPU of
the Workload's pods from the metrics API (metrics.k8s.io, served by metrics-server; kubectl
top reads the same), keeps an hour of samples in memory, forecasts demand over the lead time
(spec.scaling.leadSeconds, or the tier's start-up time plus one interval), and raises the
HPA's minReplicas to what the forecast needs, within [min, max], before the demand arrives.
It lowers minReplicas back to spec.scaling.min when the forecast no longer needs more: never
while the forecast rises, and not within spec.scaling.scaleInCooldownSeconds. Each change is
in the Workload's status.scaling and a Scaled event (kubectl describe workload NAME). The
forecast needs 8 samples (2 minutes at 15 s) after a start; until then, and without
metrics-server (a MetricsUnavailable Warning event says so, once), the HPA scales reactively
only. --no-predictive turns the predictive scaler off.`,
		Example: `  # Outside the cluster, watching one namespace
  strata operator --kubeconfig ~/.kube/config --namespace shop

  # In the cluster (deploy/operator), two replicas, one elected
  strata operator --leader-elect

  # Reactive HorizontalPodAutoscalers only, no forecasts
  strata operator --leader-elect --no-predictive`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if scalerInterval <= 0 {
				return fmt.Errorf("--scaler-interval %s: must be positive, such as 15s", scalerInterval)
			}
			engine, errs := planEngine(policy, s)
			if len(errs) > 0 {
				return reportProblems(s.Err, errs)
			}
			cfg, err := operatorConfig(kubeconfigPath)
			if err != nil {
				return failure(err)
			}
			log := logr.FromSlogHandler(slog.NewJSONHandler(s.Err, nil))
			ctrl.SetLogger(log)
			scheme, err := operator.NewScheme()
			if err != nil {
				return failure(err)
			}
			mgr, err := ctrl.NewManager(cfg, ctrl.Options{
				Scheme:                        scheme,
				Logger:                        log,
				Cache:                         operator.CacheOptions(namespace),
				Metrics:                       metricsserver.Options{BindAddress: metricsAddr},
				HealthProbeBindAddress:        probeAddr,
				LeaderElection:                leaderElect,
				LeaderElectionID:              operator.LeaderElectionID,
				LeaderElectionNamespace:       leaderElectionNamespace,
				LeaderElectionReleaseOnCancel: true,
			})
			if err != nil {
				return failure(fmt.Errorf("start the operator: %w", err))
			}
			if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
				return failure(err)
			}
			if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
				return failure(err)
			}
			opts := operator.Options{Namespace: namespace, RuntimeClass: runtimeClass, Engine: engine,
				Scaler: operator.ScalerOptions{Disabled: noPredictive, Interval: scalerInterval}}
			if err := operator.Setup(mgr, opts); err != nil {
				return failure(err)
			}
			ctx, stop := signal.NotifyContext(c.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if err := mgr.Start(ctx); err != nil {
				return failure(fmt.Errorf("operator: %w", err))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&kubeconfigPath, "kubeconfig", "", "kubeconfig file (default: in the cluster, its service account; else $KUBECONFIG or ~/.kube/config)")
	fl.StringVarP(&namespace, "namespace", "n", "", "namespace to watch (default: all)")
	fl.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 turns it off)")
	fl.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz (0 turns them off)")
	fl.BoolVar(&leaderElect, "leader-elect", false, "elect one active replica through a Lease, so that several can run")
	fl.StringVar(&leaderElectionNamespace, "leader-election-namespace", "", "namespace of the Lease (default: the operator's own, in the cluster)")
	fl.StringVar(&runtimeClass, "runtime-class", render.DefaultRuntimeClass, "RuntimeClass (and handler) of sandbox-tier pods")
	fl.StringVar(&policy, "policy", "", "AssessmentPolicy file to use instead of the built-in policy")
	fl.DurationVar(&scalerInterval, "scaler-interval", operator.DefaultScalerInterval,
		"time between two predictive scaling decisions, and between two samples of the metrics API (the default lead time adds one)")
	fl.BoolVar(&noPredictive, "no-predictive", false,
		"do not run the predictive scaler: every HorizontalPodAutoscaler scales reactively, with minReplicas at spec.scaling.min")
	return cmd
}

// operatorConfig reaches the cluster through --kubeconfig, else as controller-runtime finds
// it: in the cluster, $KUBECONFIG, ~/.kube/config.
func operatorConfig(path string) (*rest.Config, error) {
	if path != "" {
		cfg, _, err := kubeconfig(path, "")
		return cfg, err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("find the cluster: %w (give --kubeconfig)", err)
	}
	return cfg, nil
}
