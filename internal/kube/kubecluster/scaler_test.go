package kubecluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/kube/crd"
	"strata.dev/strata/internal/kube/operator"
	"strata.dev/strata/internal/scale"
)

// replay is an operator.Source that replays a demand trace: each call to
// next makes one more sample the demand now.
type replay struct {
	mu    sync.Mutex
	trace *scale.Trace
	n     int // samples replayed
	pods  int
}

func (r *replay) next() (float64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == len(r.trace.CPU) {
		return 0, false
	}
	r.n++
	return r.trace.CPU[r.n-1], true
}

func (r *replay) Demand(context.Context, operator.Target) (operator.Demand, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		return operator.Demand{}, nil // nothing measured yet: nothing is decided
	}
	series := append([]float64(nil), r.trace.CPU[:r.n]...)
	return operator.Demand{Cores: series[len(series)-1], Pods: r.pods, Series: series, Step: r.trace.Step}, nil
}

// clock is the predictive scaler's clock, moved a trace step per decision.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// TestPredictiveFloorHPA: the operator's predictive scaler, on a replayed
// demand trace (testdata/ramp.csv: flat, then a ramp), raises the floor
// (minReplicas) of the HorizontalPodAutoscaler it rendered for a Workload
// before the reactive formula on the demand of that moment would add a
// replica, and the cluster's own HPA controller scales the Deployment up to
// that floor: more pods Ready. The trace is replayed a step per decision on
// the scaler's own clock; the HPA controller runs in real time. No
// metrics-server runs here, so the HPA controller can act on its floor
// only, which is the part the operator decides.
func TestPredictiveFloorHPA(t *testing.T) {
	c := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := c.InstallCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	// The operator's own scaler has nothing to replay; the test steps a
	// second one.
	cl := startOperator(t, c, func(o *operator.Options) {
		o.Scaler = operator.ScalerOptions{Interval: time.Hour, Source: &replay{trace: &scale.Trace{}}}
	})
	f, err := os.Open("testdata/ramp.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	trace, errs := scale.ReadTrace("testdata/ramp.csv", f, scale.ReadOptions{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	src := &replay{trace: trace, pods: 2}
	clk := &clock{now: time.Now()}
	s := operator.NewScaler(cl, "default", operator.ScalerOptions{Source: src, Now: clk.Now, Interval: trace.Step}, testr.New(t))

	// A replica requests 100m at a 50% target: it serves 0.05 cores, and
	// the minimum, 2, serve 0.1.
	cooldown := int32(60)
	w := crd.FromDocument(&v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.WorkloadSpec{
		Image:     BusyboxImage,
		Command:   []string{"sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"},
		Resources: v1alpha1.Resources{CPU: resource.MustParse("100m"), Memory: resource.MustParse("16Mi")},
		Scaling: &v1alpha1.Scaling{Min: 2, Max: 6, TargetCPUPercent: 50, Predictive: true, LeadSeconds: 60,
			ScaleInCooldownSeconds: &cooldown},
		Traits: v1alpha1.Traits{Trust: v1alpha1.TrustTrusted},
	}}, "default")
	if err := cl.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	// The Deployment has no replicas of its own: the HPA controller brings
	// it to minReplicas.
	if _, err := c.WaitReady(ctx, "default", "strata.dev/workload=shop", 2); err != nil {
		t.Fatal(err)
	}
	for !assessed(ctx, cl) {
		if ctx.Err() != nil {
			t.Fatal("the Workload was never assessed")
		}
		time.Sleep(200 * time.Millisecond)
	}

	var raised *v1alpha1.ScalingDecision
	var demand float64
	for raised == nil {
		cores, ok := src.next()
		if !ok {
			t.Fatalf("the trace ended at %.3f cores and the floor was never raised", demand)
		}
		demand = cores
		clk.advance(trace.Step)
		if err := s.Step(ctx); err != nil {
			t.Fatal(err)
		}
		var cur crd.Workload
		if err := cl.Get(ctx, client.ObjectKeyFromObject(w), &cur); err != nil {
			t.Fatal(err)
		}
		if sc := cur.Status.Scaling; sc != nil && sc.Replicas > 2 {
			raised = sc.LastDecision
		}
	}
	reactive := scale.Desired(2, demand/2/0.1, 0.5, scale.DefaultTolerance)
	t.Logf("sample %d of the trace, %.3f cores (the reactive formula: %d replicas): %s", src.n, demand, reactive, raised.Reason)
	if reactive > 2 {
		t.Errorf("the floor was raised at %.3f cores, when the reactive formula already wants %d: not ahead of demand", demand, reactive)
	}
	if raised.To <= 2 || raised.Policy != v1alpha1.ScalingPredictive {
		t.Fatalf("the raise %+v", raised)
	}

	// The operator renders the floor as minReplicas, and the HPA controller
	// scales the Deployment to it.
	followed := time.Now()
	var hpa *autoscalingv2.HorizontalPodAutoscaler
	for hpa == nil || hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != raised.To {
		if ctx.Err() != nil {
			t.Fatalf("the HPA's minReplicas is not %d: %+v", raised.To, hpa)
		}
		time.Sleep(200 * time.Millisecond)
		hpa, _ = c.Client.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "shop", metav1.GetOptions{})
	}
	if _, err := c.WaitReady(ctx, "default", "strata.dev/workload=shop", int(raised.To)); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pods Ready %.1fs after the floor was raised", raised.To, time.Since(followed).Seconds())
	if hpa, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "shop", metav1.GetOptions{}); err == nil {
		for _, cond := range hpa.Status.Conditions {
			t.Logf("HPA condition %s=%s (%s): %s", cond.Type, cond.Status, cond.Reason, cond.Message)
		}
	}
	events, err := c.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name=shop"})
	if err != nil {
		t.Fatal(err)
	}
	rescaled := false
	for _, e := range events.Items {
		t.Logf("HPA event: %s %s %s", e.Type, e.Reason, e.Message)
		if e.Reason == "SuccessfulRescale" && strings.Contains(e.Message, fmt.Sprintf("New size: %d", raised.To)) {
			rescaled = true
		}
	}
	if !rescaled {
		t.Errorf("no SuccessfulRescale event of the HPA controller to %d replicas", raised.To)
	}
}

// assessed reports whether the operator assessed Workload default/shop.
func assessed(ctx context.Context, cl client.Client) bool {
	var w crd.Workload
	if err := cl.Get(ctx, client.ObjectKey{Namespace: "default", Name: "shop"}, &w); err != nil || w.Status == nil {
		return false
	}
	for _, c := range w.Status.Conditions {
		if c.Type == operator.ConditionAssessed && c.Status == v1alpha1.ConditionTrue {
			return true
		}
	}
	return false
}
