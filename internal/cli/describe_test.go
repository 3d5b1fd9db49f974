package cli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
)

func TestDescribeWorkloadScaling(t *testing.T) {
	one := int32(1)
	w := &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: "burner"}, Spec: v1alpha1.WorkloadSpec{
		Image: "localhost/busybox:1", Replicas: &one,
		Resources: v1alpha1.Resources{CPU: resource.MustParse("200m"), Memory: resource.MustParse("32Mi")},
		Scaling:   &v1alpha1.Scaling{Min: 1, Max: 3, TargetCPUPercent: 50, Predictive: true, LeadSeconds: 25},
	}}
	var out bytes.Buffer
	if err := describeWorkload(&out, w, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Replicas: 1 (set by scaling; spec.replicas 1)", "\nScaling:\n", "Policy: predictive (lead 25 s)",
		"Min / max: 1 / 3", "Target: 50% of cpu 200m a replica", "Scale-in cooldown: 300 s", "Replicas: 1 (no decision yet)"} {
		if !strings.Contains(squeeze(out.String()), squeeze(want)) {
			t.Errorf("describe lacks %q:\n%s", want, out.String())
		}
	}

	at := time.Now().Add(-2 * time.Minute)
	w.Status = &v1alpha1.WorkloadStatus{Scaling: &v1alpha1.ScalingStatus{Replicas: 3, LastDecision: &v1alpha1.ScalingDecision{
		Time: at, From: 1, To: 3, Reason: "scaled 1 -> 3: cpu 0.20 cores per replica against a target of 0.10 (50% of 200m)",
		DemandCores: 0.2, ForecastCores: 0.41, LeadSeconds: 25, Policy: v1alpha1.ScalingPredictive,
	}}}
	out.Reset()
	if err := describeWorkload(&out, w, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Replicas: 3 (set by scaling; spec.replicas 1)", " Replicas: 3\n",
		"Last decision: " + at.Local().Format("2006-01-02 15:04:05") + ", 2m ago (predictive)",
		"Reason: scaled 1 -> 3: cpu 0.20 cores per replica against a target of 0.10 (50% of 200m)",
		"Demand: 0.20 cores; forecast 0.41 cores within 25 s"} {
		if !strings.Contains(squeeze(out.String()), squeeze(want)) {
			t.Errorf("describe lacks %q:\n%s", want, out.String())
		}
	}
}

// squeeze turns every run of spaces into one, so that checks do not depend on column widths.
func squeeze(s string) string {
	return regexp.MustCompile(` {2,}`).ReplaceAllString(s, " ")
}
