package operator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/kube/render"
	"strata.dev/strata/internal/scale"
)

func TestPodStartup(t *testing.T) {
	created := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	pod := func(ready bool, after time.Duration, restarts int32, deleting bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}}
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(created.Add(time.Second))},
			{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.NewTime(created.Add(after))},
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: restarts}}
		if deleting {
			now := metav1.NewTime(created.Add(time.Hour))
			p.DeletionTimestamp = &now
		}
		return p
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want time.Duration
		ok   bool
	}{
		{"ready", pod(true, 7*time.Second, 0, false), 7 * time.Second, true},
		{"not ready", pod(false, 7*time.Second, 0, false), 0, false},
		{"restarted: Ready moved", pod(true, 7*time.Second, 1, false), 0, false},
		{"being deleted", pod(true, 7*time.Second, 0, true), 0, false},
		{"ready before created (clock skew)", pod(true, -time.Second, 0, false), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := podStartup(tc.pod); got != tc.want || ok != tc.ok {
				t.Errorf("podStartup = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestLeadFromPods: the scaler lists the strata pods of the real API server, takes the
// median time from creation to Ready of each tier as the start-up, and says where the lead
// came from; without a ready pod of the tier it takes the default; leadSeconds wins.
func TestLeadFromPods(t *testing.T) {
	ctx := context.Background()
	c := testClient(t)
	ns := env.Namespace(t)
	readyAfter := []time.Duration{5 * time.Second, 7 * time.Second, 20 * time.Second}
	for i, after := range readyAfter {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-" + string(rune('a'+i)),
				Labels: map[string]string{render.LabelWorkload: "shop", render.LabelTier: string(v1alpha1.TierContainer)}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "shop", Image: "registry.example/shop:1"}}},
		}
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(p.CreationTimestamp.Add(after))}}
		if err := c.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// A pod that is not strata's does not count.
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "registry.example/x:1"}}}}
	if err := c.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	other.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue,
		LastTransitionTime: metav1.NewTime(other.CreationTimestamp.Add(time.Hour))}}
	if err := c.Status().Update(ctx, other); err != nil {
		t.Fatal(err)
	}

	s := NewScaler(c, ns, ScalerOptions{Source: &scriptedSource{}, Interval: 15 * time.Second, Pods: c}, logr.Discard())
	st, err := s.measureStartups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	measured := func() startups { return st }
	p := scale.Policy{Predictive: true}
	lead, note := s.lead(p, v1alpha1.TierContainer, measured)
	if lead != 22*time.Second || !strings.Contains(note, "7s start-up (median of 3 ready container pods in the cluster") {
		t.Errorf("container lead %v, %q; want 7s measured + 15s", lead, note)
	}
	lead, note = s.lead(p, v1alpha1.TierSandbox, measured)
	if want := scale.DefaultStartup()[v1alpha1.TierSandbox] + 15*time.Second; lead != want || !strings.Contains(note, "no ready sandbox pod measured yet") {
		t.Errorf("sandbox lead %v, %q; want the default %v", lead, note, want)
	}
	p.LeadSeconds = 90
	unused := func() startups { t.Error("pods read for a lead that leadSeconds sets"); return nil }
	if lead, _ = s.lead(p, v1alpha1.TierContainer, unused); lead != 90*time.Second {
		t.Errorf("lead with leadSeconds 90 = %v", lead)
	}
}
