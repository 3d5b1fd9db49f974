package v1alpha1

import "testing"

func TestDesiredReplicas(t *testing.T) {
	i32 := func(n int32) *int32 { return &n }
	scaling := &Scaling{Min: 2, Max: 5}
	tests := []struct {
		name     string
		replicas *int32
		scaling  *Scaling
		status   *WorkloadStatus
		want     int32
	}{
		{"no scaling: spec.replicas", i32(4), nil, &WorkloadStatus{Scaling: &ScalingStatus{Replicas: 9}}, 4},
		{"no scaling, unset: the default", nil, nil, nil, DefaultReplicas},
		{"before the first decision: spec.replicas", i32(3), scaling, nil, 3},
		{"before the first decision: spec.replicas raised to min", i32(1), scaling, &WorkloadStatus{}, 2},
		{"before the first decision: spec.replicas lowered to max", i32(8), scaling, nil, 5},
		{"before the first decision, unset: min", nil, scaling, nil, 2},
		{"the scaler's count", i32(1), scaling, &WorkloadStatus{Scaling: &ScalingStatus{Replicas: 4}}, 4},
		{"the scaler's count within a lowered max", i32(1), scaling, &WorkloadStatus{Scaling: &ScalingStatus{Replicas: 7}}, 5},
		{"an undefaulted min counts as 1", nil, &Scaling{Max: 3}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &Workload{Spec: WorkloadSpec{Replicas: tt.replicas, Scaling: tt.scaling}, Status: tt.status}
			if got := w.DesiredReplicas(); got != tt.want {
				t.Errorf("DesiredReplicas() = %d, want %d", got, tt.want)
			}
		})
	}
}
