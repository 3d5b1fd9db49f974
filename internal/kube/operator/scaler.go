package operator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/kube/crd"
	"strata.dev/strata/internal/kube/render"
	"strata.dev/strata/internal/scale"
	"strata.dev/strata/internal/scaler"
)

// DefaultScalerInterval is the time between two decisions of the predictive scaler, and
// between two samples of the metrics API.
const DefaultScalerInterval = scaler.DefaultInterval

// EventComponent is the source of the events the operator records.
const EventComponent = "strata-operator"

// ScalerOptions tune the predictive scaler.
type ScalerOptions struct {
	// Disabled turns the predictive scaler off: every HorizontalPodAutoscaler scales
	// reactively, with spec.scaling.min as its minReplicas.
	Disabled bool
	// Interval is the time between two decisions. Default DefaultScalerInterval.
	Interval time.Duration
	// Source tells demand. Default: a MetricsSource sampled every Interval.
	Source Source
	// Now is the clock of decisions and stabilization windows. Default time.Now.
	Now func() time.Time
	// Startup is each tier's start-up time, for the default lead time; nil or a missing tier
	// takes scale.DefaultStartup.
	Startup map[v1alpha1.Tier]time.Duration
	// Pods reads the cluster's pods, for the start-up times the lead time is made of (see
	// startups); nil: the Startup figures are used. Setup gives the manager's API reader.
	Pods client.Reader
}

func (o ScalerOptions) withDefaults() ScalerOptions {
	if o.Interval <= 0 {
		o.Interval = DefaultScalerInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Scaler is the operator's predictive scaler. Every Interval it decides, for each Workload
// with spec.scaling.predictive that the operator applied as a Deployment or StatefulSet and
// a HorizontalPodAutoscaler, the floor under that HPA: scale.Decide in floor mode, the same
// decision the daemon makes, on the demand its Source reports, in the same loop
// (internal/scaler). A floor that changes is written to the Workload's status.scaling
// (replicas, and lastDecision with the reason) and recorded as a Scaled event; the reconcile
// applies status.scaling.replicas, within [spec.scaling.min, spec.scaling.max], as the HPA's
// minReplicas. The HPA keeps scaling reactively above it.
type Scaler struct {
	c         client.Client
	namespace string
	o         ScalerOptions
	log       logr.Logger
	loop      *scaler.Loop[*crd.Workload]
}

var (
	_ manager.Runnable               = (*Scaler)(nil)
	_ manager.LeaderElectionRunnable = (*Scaler)(nil)
)

// NewScaler returns a predictive scaler that reads and writes Workloads of namespace (every
// namespace when empty) through c. o.Source must be set.
func NewScaler(c client.Client, namespace string, o ScalerOptions, log logr.Logger) *Scaler {
	s := &Scaler{c: c, namespace: namespace, o: o.withDefaults(), log: log}
	s.loop = scaler.New[*crd.Workload](&clusterHost{s: s}, scaler.Options{Interval: s.o.Interval, Clock: s.o.Now})
	return s
}

// NeedLeaderElection is true: only the elected operator scales.
func (s *Scaler) NeedLeaderElection() bool { return true }

// Start decides every Interval until ctx ends.
func (s *Scaler) Start(ctx context.Context) error { return s.loop.Run(ctx) }

// Step makes one decision for every predictive Workload, and clears status.scaling of
// Workloads that are no longer predictive.
func (s *Scaler) Step(ctx context.Context) error { return s.loop.Step(ctx) }

// clusterHost is the scaling loop's host in a cluster: Workload custom resources, demand
// from the Source, start-up times from the pods.
type clusterHost struct {
	s *Scaler
	// unavailable: the metrics API is not served, and the log said so.
	unavailable bool
	// measured are the round's start-up times, read at most once a round, and only when a
	// workload's lead needs them (no leadSeconds); when they cannot be read, measureErr says
	// why and the defaults stand in.
	measured   func() startups
	measureErr error
}

var _ scaler.Host[*crd.Workload] = (*clusterHost)(nil)

// Round lists the Workloads: predictive ones applied with a HorizontalPodAutoscaler are
// decided, those no longer predictive have their status.scaling cleared; those being
// deleted or not applied as pods are left out.
func (h *clusterHost) Round(ctx context.Context) (scaler.Round[*crd.Workload], error) {
	s := h.s
	r := scaler.Round[*crd.Workload]{Err: func() error { return h.measureErr }}
	var wl crd.WorkloadList
	var opts []client.ListOption
	if s.namespace != "" {
		opts = append(opts, client.InNamespace(s.namespace))
	}
	if err := s.c.List(ctx, &wl, opts...); err != nil {
		return r, fmt.Errorf("list workloads: %w", err)
	}
	h.measureErr = nil
	h.measured = sync.OnceValue(func() startups {
		st, err := s.measureStartups(ctx)
		h.measureErr = err
		return st
	})
	for i := range wl.Items {
		w := &wl.Items[i]
		if w.DeletionTimestamp != nil {
			continue
		}
		sw := scaler.Workload[*crd.Workload]{Key: client.ObjectKeyFromObject(w).String(), Object: w}
		if sc := w.Spec.Scaling; sc == nil || !sc.Predictive {
			if w.Status != nil {
				sw.Scaling = w.Status.Scaling
			}
			sw.Action = scaler.Clear
			r.Workloads = append(r.Workloads, sw)
			continue
		}
		if !scalable(w) {
			continue
		}
		doc := w.Document()
		doc.SetDefaults()
		sw.Policy = scale.PolicyFor(doc.Spec.Scaling)
		sw.RequestMilli = doc.Spec.Resources.CPU.MilliValue()
		if sw.RequestMilli <= 0 {
			sw.Action = scaler.Skip // SetDefaults gives every workload a cpu request
			r.Workloads = append(r.Workloads, sw)
			continue
		}
		sw.Floor, sw.Current = true, sw.Policy.Min
		if doc.Status != nil && doc.Status.Scaling != nil {
			sw.Scaling = doc.Status.Scaling
			sw.Current = min(max(int(sw.Scaling.Replicas), sw.Policy.Min), sw.Policy.Max)
		}
		r.Workloads = append(r.Workloads, sw)
	}
	return r, nil
}

// Measure asks the Source for w's demand, after its lead; without the metrics API, w is held.
func (h *clusterHost) Measure(ctx context.Context, sw scaler.Workload[*crd.Workload], _ time.Time) (scaler.Inputs, error) {
	s, w := h.s, sw.Object
	lead, leadNote := s.lead(sw.Policy, w.Status.Tier, h.measured)
	demand, err := s.o.Source.Demand(ctx, Target{Namespace: w.Namespace, Workload: w.Name, Selector: labels.Set{render.LabelWorkload: w.Name}})
	if errors.Is(err, ErrMetricsUnavailable) {
		if !h.unavailable {
			h.unavailable = true
			s.log.Info("no demand known: the HorizontalPodAutoscalers scale reactively only", "reason", err.Error())
		}
		return scaler.Inputs{}, &scaler.Hold{Reason: "MetricsUnavailable", Message: "spec.scaling.predictive is set, but " + err.Error() +
			": the HorizontalPodAutoscaler scales reactively only, with minReplicas at spec.scaling.min, until the metrics API answers"}
	}
	if err != nil {
		return scaler.Inputs{}, err
	}
	if h.unavailable {
		h.unavailable = false
		s.log.Info("the metrics API answers: predictive scaling resumes")
	}
	return scaler.Inputs{Demand: demand.Cores, Measured: demand.Pods, Series: demand.Series, Step: demand.Step,
		Lead: lead, LeadNote: leadNote}, nil
}

// Write sets the Workload's status.scaling.
func (h *clusterHost) Write(ctx context.Context, sw scaler.Workload[*crd.Workload], sc *v1alpha1.ScalingStatus) error {
	return h.s.writeScaling(ctx, client.ObjectKeyFromObject(sw.Object), sc)
}

// Warn records a Warning event on the Workload.
func (h *clusterHost) Warn(ctx context.Context, sw scaler.Workload[*crd.Workload], hold *scaler.Hold) {
	h.s.event(ctx, sw.Object, corev1.EventTypeWarning, hold.Reason, hold.Message)
}

// Scaled logs the new floor and records a Scaled event on the Workload.
func (h *clusterHost) Scaled(ctx context.Context, sw scaler.Workload[*crd.Workload], d *v1alpha1.ScalingDecision) {
	w := sw.Object
	h.s.log.Info("minReplicas set", "namespace", w.Namespace, "workload", w.Name, "from", int(d.From), "to", int(d.To), "policy", d.Policy)
	h.s.event(ctx, w, corev1.EventTypeNormal, "Scaled", d.Reason)
}

// Failed logs a round that went wrong, unless the operator is stopping.
func (h *clusterHost) Failed(ctx context.Context, err error) {
	if ctx.Err() == nil {
		h.s.log.Error(err, "predictive scaling decisions failed")
	}
}

// scalable tells whether the operator applied w as pods with a HorizontalPodAutoscaler: it
// was assessed as a container or sandbox and rendered.
func scalable(w *crd.Workload) bool {
	if w.Status == nil || (w.Status.Tier != v1alpha1.TierContainer && w.Status.Tier != v1alpha1.TierSandbox) {
		return false
	}
	return statusCondition(w.Status, ConditionAssessed).Status == v1alpha1.ConditionTrue &&
		statusCondition(w.Status, ConditionReady).Reason != "RenderFailed"
}

func statusCondition(st *v1alpha1.WorkloadStatus, typ string) v1alpha1.Condition {
	if c := find(st, typ); c != nil {
		return *c
	}
	return v1alpha1.Condition{}
}

// writeScaling sets status.scaling of the Workload key (nil clears it), keeping the rest of
// the status; it retries when the reconcile wrote the status first.
func (s *Scaler) writeScaling(ctx context.Context, key types.NamespacedName, sc *v1alpha1.ScalingStatus) error {
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var w crd.Workload
		if err := s.c.Get(ctx, key, &w); err != nil {
			return err
		}
		if w.Status == nil {
			w.Status = &v1alpha1.WorkloadStatus{}
		}
		w.Status.Scaling = sc
		return s.c.Status().Update(ctx, &w)
	})
	if err != nil {
		return fmt.Errorf("write status.scaling: %w", err)
	}
	return nil
}

// event records an event on w; a failure is logged, not returned, since the decision stands
// in the status.
func (s *Scaler) event(ctx context.Context, w *crd.Workload, typ, reason, msg string) {
	now := metav1.NewTime(s.o.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, GenerateName: w.Name + "."},
		InvolvedObject: corev1.ObjectReference{APIVersion: crd.GroupVersion.String(), Kind: v1alpha1.KindWorkload,
			Namespace: w.Namespace, Name: w.Name, UID: w.UID, ResourceVersion: w.ResourceVersion},
		Type: typ, Reason: reason, Message: msg,
		Source:         corev1.EventSource{Component: EventComponent},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	if err := s.c.Create(ctx, ev); err != nil {
		s.log.Error(err, "event not recorded", "namespace", w.Namespace, "workload", w.Name, "reason", reason, "message", msg)
	}
}
