package kubecluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/kube/crd"
	"strata.dev/strata/internal/kube/operator"
	"strata.dev/strata/internal/kube/render"
)

// TestMetricsHPA starts metrics-server (ServeMetrics) and a Workload with
// spec.scaling whose pods burn CPU: the cluster's HPA controller must read
// their utilization from the metrics API (its ScalingActive condition
// True, a current CPU metric), and the operator's MetricsSource must
// measure the workload's demand from it.
func TestMetricsHPA(t *testing.T) {
	c := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := c.ServeMetrics(ctx); errors.Is(err, ErrNoMetricsServer) {
		t.Skip("skipping: " + err.Error())
	} else if err != nil {
		t.Fatal(err)
	}
	if err := c.InstallCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	cl := startOperator(t, c)
	w := crd.FromDocument(&v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: "burner"}, Spec: v1alpha1.WorkloadSpec{
		Image:     BusyboxImage,
		Command:   []string{"sh", "-c", "trap 'exit 0' TERM; while :; do :; done & wait"},
		Resources: v1alpha1.Resources{CPU: resource.MustParse("100m"), Memory: resource.MustParse("16Mi")},
		Scaling:   &v1alpha1.Scaling{Min: 1, Max: 3, TargetCPUPercent: 50},
		Traits:    v1alpha1.Traits{Trust: v1alpha1.TrustTrusted},
	}}, "default")
	if err := cl.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitReady(ctx, "default", "strata.dev/workload=burner", 1); err != nil {
		t.Fatal(err)
	}
	for {
		hpa, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "burner", metav1.GetOptions{})
		if err == nil && len(hpa.Status.CurrentMetrics) > 0 && hpa.Status.CurrentMetrics[0].Resource != nil &&
			hpa.Status.CurrentMetrics[0].Resource.Current.AverageUtilization != nil {
			t.Logf("the HPA controller reads CPU %d%% of the request (target 50%%); desired replicas %d",
				*hpa.Status.CurrentMetrics[0].Resource.Current.AverageUtilization, hpa.Status.DesiredReplicas)
			for _, cond := range hpa.Status.Conditions {
				t.Logf("HPA condition %s=%s (%s): %s", cond.Type, cond.Status, cond.Reason, cond.Message)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the HPA never read a CPU metric: %+v (%v)", hpa, err)
		}
		time.Sleep(time.Second)
	}
	src, err := operator.NewMetricsSource(c.Config, operator.MetricsOptions{Step: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d, err := src.Demand(ctx, operator.Target{Namespace: "default", Workload: "burner", Selector: labels.Set{render.LabelWorkload: "burner"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the operator's MetricsSource: %.3f cores over %d pod(s)", d.Cores, d.Pods)
	if d.Pods < 1 || d.Cores <= 0 {
		t.Errorf("demand %+v, want the burning pods measured", d)
	}
}
