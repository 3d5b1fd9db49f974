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
)

// DefaultScalerInterval is the time between two decisions of the predictive scaler, and
// between two samples of the metrics API.
const DefaultScalerInterval = 15 * time.Second

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
// decision the daemon makes, on the demand its Source reports. A floor that changes is
// written to the Workload's status.scaling (replicas, and lastDecision with the reason) and
// recorded as a Scaled event; the reconcile applies status.scaling.replicas, within
// [spec.scaling.min, spec.scaling.max], as the HPA's minReplicas. The HPA keeps scaling
// reactively above it.
type Scaler struct {
	c         client.Client
	namespace string
	o         ScalerOptions
	log       logr.Logger

	mu          sync.Mutex
	state       map[types.NamespacedName]*floorState
	unavailable bool // the metrics API is not served, and the log said so
}

// floorState is what the scaler remembers of one Workload between decisions.
type floorState struct {
	hpa *scale.HPA
	// warned: a Warning event said that no demand is known.
	warned bool
}

var (
	_ manager.Runnable               = (*Scaler)(nil)
	_ manager.LeaderElectionRunnable = (*Scaler)(nil)
)

// NewScaler returns a predictive scaler that reads and writes Workloads of namespace (every
// namespace when empty) through c. o.Source must be set.
func NewScaler(c client.Client, namespace string, o ScalerOptions, log logr.Logger) *Scaler {
	return &Scaler{c: c, namespace: namespace, o: o.withDefaults(), log: log, state: map[types.NamespacedName]*floorState{}}
}

// NeedLeaderElection is true: only the elected operator scales.
func (s *Scaler) NeedLeaderElection() bool { return true }

// Start decides every Interval until ctx ends.
func (s *Scaler) Start(ctx context.Context) error {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.Step(ctx); err != nil && ctx.Err() == nil {
				s.log.Error(err, "predictive scaling decisions failed")
			}
		}
	}
}

// Step makes one decision for every predictive Workload, and clears status.scaling of
// Workloads that are no longer predictive.
func (s *Scaler) Step(ctx context.Context) error {
	var wl crd.WorkloadList
	var opts []client.ListOption
	if s.namespace != "" {
		opts = append(opts, client.InNamespace(s.namespace))
	}
	if err := s.c.List(ctx, &wl, opts...); err != nil {
		return fmt.Errorf("list workloads: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[types.NamespacedName]bool{}
	var errs []error
	// The pods' start-up times are read at most once a round, and only when a workload's
	// lead needs them (no leadSeconds); when they cannot be read the defaults stand in.
	var measureErr error
	measured := sync.OnceValue(func() startups {
		st, err := s.measureStartups(ctx)
		measureErr = err
		return st
	})
	for i := range wl.Items {
		w := &wl.Items[i]
		key := client.ObjectKeyFromObject(w)
		if w.DeletionTimestamp != nil {
			continue
		}
		if sc := w.Spec.Scaling; sc == nil || !sc.Predictive {
			if w.Status != nil && w.Status.Scaling != nil {
				errs = append(errs, s.writeScaling(ctx, key, nil))
			}
			continue
		}
		if !scalable(w) {
			continue
		}
		seen[key] = true
		if err := s.decide(ctx, w, measured); err != nil {
			errs = append(errs, fmt.Errorf("workload %s: %w", key, err))
		}
	}
	for key := range s.state {
		if !seen[key] {
			delete(s.state, key)
		}
	}
	if measureErr != nil {
		errs = append(errs, measureErr)
	}
	return errors.Join(errs...)
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

// decide makes one decision for w.
func (s *Scaler) decide(ctx context.Context, w *crd.Workload, measured func() startups) error {
	key := client.ObjectKeyFromObject(w)
	st := s.state[key]
	if st == nil {
		st = &floorState{}
		s.state[key] = st
	}
	doc := w.Document()
	doc.SetDefaults()
	p := scale.PolicyFor(doc.Spec.Scaling)
	request := doc.Spec.Resources.CPU.MilliValue()
	if request <= 0 {
		return nil // SetDefaults gives every workload a cpu request
	}
	lead, leadNote := s.lead(p, doc.Status.Tier, measured)
	demand, err := s.o.Source.Demand(ctx, Target{Namespace: w.Namespace, Workload: w.Name, Selector: labels.Set{render.LabelWorkload: w.Name}})
	if errors.Is(err, ErrMetricsUnavailable) {
		if !s.unavailable {
			s.unavailable = true
			s.log.Info("no demand known: the HorizontalPodAutoscalers scale reactively only", "reason", err.Error())
		}
		if !st.warned {
			st.warned = true
			s.event(ctx, w, corev1.EventTypeWarning, "MetricsUnavailable", "spec.scaling.predictive is set, but "+err.Error()+
				": the HorizontalPodAutoscaler scales reactively only, with minReplicas at spec.scaling.min, until the metrics API answers")
		}
		return nil
	}
	if err != nil {
		return err
	}
	if s.unavailable {
		s.unavailable = false
		s.log.Info("the metrics API answers: predictive scaling resumes")
	}
	st.warned = false

	now := s.o.Now()
	floor := p.Min
	var prev *v1alpha1.ScalingStatus
	if doc.Status != nil && doc.Status.Scaling != nil {
		prev = doc.Status.Scaling
		floor = min(max(int(prev.Replicas), p.Min), p.Max)
	}
	if st.hpa == nil {
		st.hpa = scale.NewHPA(p.Min, p.Max, 0)
		if prev != nil && prev.LastDecision != nil {
			// A restarted (or newly elected) operator keeps the cooldown of the last raise.
			st.hpa.ScaleTo(prev.LastDecision.Time, int(prev.LastDecision.From), int(prev.LastDecision.To))
		}
	}
	st.hpa.Min, st.hpa.Max, st.hpa.Target = p.Min, p.Max, float64(p.TargetCPUPercent)/100
	st.hpa.ScaleDownWindow = time.Duration(p.ScaleInCooldownSeconds) * time.Second

	in := scale.DecisionInput{
		Policy: p, Current: floor, RequestMilli: request, Now: now, Floor: true,
		Demand: demand.Cores, Measured: demand.Pods, Series: demand.Series, Step: demand.Step,
		Lead: lead,
	}
	d := scale.Decide(in, st.hpa)
	if d.Forecast {
		d.Notes = append(d.Notes, leadNote)
	}
	if d.To == floor {
		if prev != nil && int(prev.Replicas) == floor {
			return nil
		}
		// The first decision (or new bounds) states the floor the reconcile applies.
		sc := &v1alpha1.ScalingStatus{Replicas: int32(floor)}
		if prev != nil {
			sc.LastDecision = prev.LastDecision
		}
		return s.writeScaling(ctx, key, sc)
	}
	rec := d.Record(floor, now, demand.Cores)
	if err := s.writeScaling(ctx, key, &v1alpha1.ScalingStatus{Replicas: int32(d.To), LastDecision: rec}); err != nil {
		return err
	}
	s.log.Info("minReplicas set", "namespace", w.Namespace, "workload", w.Name, "from", floor, "to", d.To, "policy", d.Policy)
	s.event(ctx, w, corev1.EventTypeNormal, "Scaled", rec.Reason)
	return nil
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
