package operator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/kube/crd"
	"strata.dev/strata/internal/kube/render"
	"strata.dev/strata/internal/scale"
)

// sampleStep is the scripted demand's step, the operator's default interval.
const sampleStep = 15 * time.Second

// scriptedSource is a Source whose demand the test writes, one sample per decision.
type scriptedSource struct {
	mu     sync.Mutex
	series []float64
	pods   int
	asked  []Target
}

func (s *scriptedSource) push(cores float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.series = append(s.series, cores)
}

func (s *scriptedSource) last() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.series[len(s.series)-1]
}

func (s *scriptedSource) Demand(_ context.Context, t Target) (Demand, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, t)
	return Demand{Cores: s.series[len(s.series)-1], Pods: s.pods, Series: append([]float64(nil), s.series...), Step: sampleStep}, nil
}

// scalerEnv runs the operator, whose own predictive scaler is idle, and a predictive scaler
// that the test steps on a test clock with a scripted source.
type scalerEnv struct {
	t   *testing.T
	c   client.Client
	ns  string
	clk *testClock
	src *scriptedSource
	s   *Scaler
}

func newScalerEnv(t *testing.T) *scalerEnv {
	e := &scalerEnv{t: t, c: testClient(t), ns: env.Namespace(t),
		clk: &testClock{now: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}, src: &scriptedSource{pods: 2}}
	startOperator(t, env.Config, e.ns, false, func(o *Options) { o.Scaler.Interval = time.Hour })
	e.s = NewScaler(e.c, e.ns, ScalerOptions{Source: e.src, Now: e.clk.Now, Interval: sampleStep}, logr.Discard())
	return e
}

// step samples cores, moves the clock a step on, and decides.
func (e *scalerEnv) step(cores float64) {
	e.t.Helper()
	e.src.push(cores)
	e.clk.Advance(sampleStep)
	if err := e.s.Step(context.Background()); err != nil {
		e.t.Fatalf("step: %v", err)
	}
}

func (e *scalerEnv) workload(name string) *crd.Workload {
	e.t.Helper()
	var w crd.Workload
	if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: name}, &w); err != nil {
		e.t.Fatal(err)
	}
	return &w
}

func (e *scalerEnv) scaling(name string) *v1alpha1.ScalingStatus {
	e.t.Helper()
	if w := e.workload(name); w.Status != nil {
		return w.Status.Scaling
	}
	return nil
}

// hpaMin waits until the HorizontalPodAutoscaler of name has minReplicas want, and returns it.
func (e *scalerEnv) hpaMin(name string, want int32) *autoscalingv2.HorizontalPodAutoscaler {
	e.t.Helper()
	var hpa autoscalingv2.HorizontalPodAutoscaler
	eventually(e.t, fmt.Sprintf("minReplicas %d", want), func() error {
		if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: name}, &hpa); err != nil {
			return err
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != want {
			return fmt.Errorf("minReplicas %v", ptrString(hpa.Spec.MinReplicas))
		}
		return nil
	})
	return &hpa
}

func ptrString(n *int32) string {
	if n == nil {
		return "unset"
	}
	return fmt.Sprint(*n)
}

// events lists the events of workload name with reason.
func (e *scalerEnv) events(name, reason string) []corev1.Event {
	e.t.Helper()
	return workloadEvents(e.t, e.c, e.ns, name, reason)
}

func workloadEvents(t *testing.T, c client.Client, ns, name, reason string) []corev1.Event {
	t.Helper()
	var l corev1.EventList
	if err := c.List(context.Background(), &l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []corev1.Event
	for _, ev := range l.Items {
		o := ev.InvolvedObject
		if o.Kind == v1alpha1.KindWorkload && o.APIVersion == crd.GroupVersion.String() && o.Name == name && ev.Reason == reason {
			out = append(out, ev)
		}
	}
	return out
}

// update changes the Workload name with f, retrying on conflicts with the operator's writes.
func (e *scalerEnv) update(name string, f func(*crd.Workload)) {
	e.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		w := e.workload(name)
		f(w)
		return e.c.Update(context.Background(), w)
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func predictiveWorkload(ns, name string) *crd.Workload {
	cooldown := int32(60)
	return workload(ns, name, v1alpha1.WorkloadSpec{Image: "registry.example/shop:1",
		Resources: v1alpha1.Resources{CPU: resource.MustParse("500m")},
		Scaling: &v1alpha1.Scaling{Min: 2, Max: 10, TargetCPUPercent: 50, Predictive: true, LeadSeconds: 60,
			ScaleInCooldownSeconds: &cooldown}})
}

// TestPredictiveScaler: on a rising ramp, the operator raises the HorizontalPodAutoscaler's
// minReplicas while the reactive formula on the demand measured then would still keep the
// replicas; the decision is in the status and an event. A re-reconcile keeps the floor.
// When demand falls, the floor comes back to spec.scaling.min once the cooldown has passed;
// turning predictive scaling off clears status.scaling.
//
// A replica requests 500m at a 50% target: it serves 0.25 cores, and min 2 serve 0.5.
func TestPredictiveScaler(t *testing.T) {
	e := newScalerEnv(t)
	ctx := context.Background()
	w := predictiveWorkload(e.ns, "shop")
	if err := e.c.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	e.hpaMin("shop", 2)
	eventually(t, "the workload assessed", func() error {
		if !scalable(e.workload("shop")) {
			return errors.New("not assessed yet")
		}
		return nil
	})

	// A flat hour at 0.3 cores: the floor is min, and says so once.
	for range 12 {
		e.step(0.3)
	}
	if sc := e.scaling("shop"); sc == nil || sc.Replicas != 2 || sc.LastDecision != nil {
		t.Fatalf("status.scaling on a flat demand: %+v", sc)
	}
	if got := e.src.asked[0]; got.Namespace != e.ns || got.Workload != "shop" || got.Selector[render.LabelWorkload] != "shop" {
		t.Errorf("asked for the demand of %+v", got)
	}

	// The ramp: 0.03 cores more each step.
	var raised *v1alpha1.ScalingDecision
	for k := 0; raised == nil; k++ {
		if k == 30 {
			t.Fatalf("the ramp reached %.2f cores and the floor stays %+v", e.src.last(), e.scaling("shop"))
		}
		e.step(e.src.last() + 0.03)
		if sc := e.scaling("shop"); sc != nil && sc.Replicas > 2 {
			raised = sc.LastDecision
		}
	}
	demand := e.src.last()
	// What the HorizontalPodAutoscaler would do now, on the demand alone.
	reactive := scale.Desired(2, demand/2/0.5, 0.5, scale.DefaultTolerance)
	if reactive > 2 {
		t.Errorf("the floor was raised at %.2f cores, when the reactive formula already wants %d: not ahead of demand", demand, reactive)
	}
	wantPrefix := fmt.Sprintf("minReplicas 2 -> %d: cpu ", raised.To)
	if raised.From != 2 || raised.To <= 2 || raised.Policy != v1alpha1.ScalingPredictive || raised.LeadSeconds != 60 ||
		raised.ForecastCores <= 0.5 || !strings.HasPrefix(raised.Reason, wantPrefix) || !strings.Contains(raised.Reason, "; predictive: forecast ") ||
		!raised.Time.Equal(e.clk.Now()) {
		t.Errorf("the raise %+v", raised)
	}
	t.Logf("raised at %.2f cores (the reactive formula: %d): %s", demand, reactive, raised.Reason)
	e.hpaMin("shop", raised.To)
	ev := e.events("shop", "Scaled")
	if len(ev) != 1 || ev[0].Type != corev1.EventTypeNormal || ev[0].Message != raised.Reason || ev[0].Source.Component != EventComponent {
		t.Errorf("Scaled events %+v, want one with the reason", ev)
	}

	// A re-reconcile (a label on the Workload changes the objects' labels) applies the floor
	// again rather than undoing it.
	e.update("shop", func(w *crd.Workload) { w.Labels = map[string]string{"team": "checkout"} })
	eventually(t, "the label applied", func() error {
		var hpa autoscalingv2.HorizontalPodAutoscaler
		if err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "shop"}, &hpa); err != nil {
			return err
		}
		if hpa.Labels["team"] != "checkout" {
			return errors.New("the HorizontalPodAutoscaler lacks the new label")
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != raised.To {
			t.Fatalf("the re-reconcile set minReplicas %s, want the floor %d", ptrString(hpa.Spec.MinReplicas), raised.To)
		}
		return nil
	})

	// Demand holds, then falls: the floor stays for the cooldown, then comes back to min.
	high := e.scaling("shop").Replicas
	for range 3 {
		e.step(demand)
	}
	high = max(high, e.scaling("shop").Replicas)
	fell := e.clk.Now().Add(sampleStep)
	for k := 0; e.scaling("shop").Replicas > 2; k++ {
		if k == 40 {
			t.Fatalf("the floor stays %d after the demand fell", e.scaling("shop").Replicas)
		}
		e.step(0.1)
		sc := e.scaling("shop")
		if sc.Replicas < high && e.clk.Now().Sub(fell) < 60*time.Second {
			t.Fatalf("the floor went %d -> %d %s after the demand fell, within the 60 s cooldown: %s",
				high, sc.Replicas, e.clk.Now().Sub(fell), sc.LastDecision.Reason)
		}
	}
	lowered := e.scaling("shop").LastDecision
	if lowered.To != 2 || lowered.Policy != v1alpha1.ScalingReactive || !strings.HasPrefix(lowered.Reason, fmt.Sprintf("minReplicas %d -> 2: ", lowered.From)) {
		t.Errorf("the way back %+v", lowered)
	}
	t.Logf("back to min %s after the demand fell: %s", lowered.Time.Sub(fell), lowered.Reason)
	e.hpaMin("shop", 2)
	if !slices.ContainsFunc(e.events("shop", "Scaled"), func(ev corev1.Event) bool { return ev.Message == lowered.Reason }) {
		t.Errorf("no Scaled event says %q", lowered.Reason)
	}

	// Raised again, then predictive scaling off: status.scaling goes, and minReplicas is
	// spec.scaling.min again.
	for e.scaling("shop").Replicas == 2 {
		if e.src.last() > 3 {
			t.Fatal("the second ramp never raised the floor")
		}
		e.step(e.src.last() + 0.1)
	}
	e.hpaMin("shop", e.scaling("shop").Replicas)
	e.update("shop", func(w *crd.Workload) { w.Spec.Scaling.Predictive = false })
	eventually(t, "status.scaling cleared", func() error {
		e.step(e.src.last())
		if sc := e.scaling("shop"); sc != nil {
			return fmt.Errorf("status.scaling %+v", sc)
		}
		return nil
	})
	e.hpaMin("shop", 2)
}

// TestPredictiveScalerWithoutMetrics: the test API server serves no metrics API; the
// operator's own scaler, on its default source, says so once with a Warning event and leaves
// the HorizontalPodAutoscaler reactive, at spec.scaling.min.
func TestPredictiveScalerWithoutMetrics(t *testing.T) {
	c := testClient(t)
	ns := env.Namespace(t)
	startOperator(t, env.Config, ns, false)
	ctx := context.Background()
	if err := c.Create(ctx, predictiveWorkload(ns, "shop")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the MetricsUnavailable warning", func() error {
		if len(workloadEvents(t, c, ns, "shop", "MetricsUnavailable")) == 0 {
			return errors.New("no warning")
		}
		return nil
	})
	time.Sleep(10 * testScalerInterval) // ten more decisions
	ev := workloadEvents(t, c, ns, "shop", "MetricsUnavailable")
	if len(ev) != 1 || ev[0].Type != corev1.EventTypeWarning || !strings.Contains(ev[0].Message, "install metrics-server") {
		t.Errorf("MetricsUnavailable events %+v, want one Warning that says what to install", ev)
	}
	var hpa autoscalingv2.HorizontalPodAutoscaler
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, &hpa); err != nil {
		t.Fatal(err)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 2 {
		t.Errorf("minReplicas %s, want spec.scaling.min 2", ptrString(hpa.Spec.MinReplicas))
	}
	var w crd.Workload
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, &w); err != nil {
		t.Fatal(err)
	}
	if w.Status == nil || w.Status.Scaling != nil {
		t.Errorf("status.scaling %+v without metrics, want none", w.Status)
	}
}
