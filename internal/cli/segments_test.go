package cli

import (
	"bytes"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/golden"
)

// segmentFixture is three declared segments and workloads on them and on an implicit one.
func segmentFixture() ([]v1alpha1.Segment, []v1alpha1.Workload) {
	seg := func(name string, egress v1alpha1.Egress, allow ...v1alpha1.AllowRule) v1alpha1.Segment {
		s := v1alpha1.Segment{Metadata: v1alpha1.ObjectMeta{Name: name}, Spec: v1alpha1.SegmentSpec{Egress: egress, Allow: allow}}
		s.Status = &v1alpha1.SegmentStatus{Subnet: "10.213.7.0/24", Gateway: "10.213.7.1", Bridge: "st-" + name, Workloads: 1,
			Conditions: []v1alpha1.Condition{{Type: "Ready", Status: v1alpha1.ConditionTrue, Reason: "BridgeUp", Message: "bridge st-" + name + " holds 10.213.7.1 on 10.213.7.0/24"}}}
		return s
	}
	from := func(s string, ports ...int32) v1alpha1.AllowRule {
		r := v1alpha1.AllowRule{From: v1alpha1.SegmentRef{Segment: s}}
		for _, p := range ports {
			r.Ports = append(r.Ports, v1alpha1.FlowPort{Port: p, Protocol: v1alpha1.ProtocolTCP})
		}
		return r
	}
	segs := []v1alpha1.Segment{
		seg("web", v1alpha1.EgressAllow),
		seg("payments", v1alpha1.EgressDeny, from("web", 8080, 8443), from("ghost", 22)),
		seg("reporting", v1alpha1.EgressDeny, from("payments")),
	}
	wl := func(name, segment string, tier v1alpha1.Tier, ip string, publish int32) v1alpha1.Workload {
		w := v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: name}, Spec: v1alpha1.WorkloadSpec{Segment: segment}}
		if publish != 0 {
			w.Spec.Ports = []v1alpha1.Port{{Name: "http", Port: 8080, Publish: publish}}
		}
		w.Status = &v1alpha1.WorkloadStatus{Tier: tier, Instances: []v1alpha1.Instance{{ID: name + "-0", IP: ip, State: "running"}}}
		return w
	}
	wls := []v1alpha1.Workload{
		wl("shop", "web", v1alpha1.TierContainer, "10.213.1.2", 18080),
		wl("ledger", "payments", v1alpha1.TierVM, "10.213.2.2", 0),
		wl("batch", "jobs", v1alpha1.TierSandbox, "10.213.3.2", 0),
	}
	return segs, wls
}

func TestDescribeSegment(t *testing.T) {
	segs, wls := segmentFixture()
	views := segmentViews(segs, wls)
	for _, name := range []string{"payments", "web", "jobs"} {
		var out bytes.Buffer
		if err := describeSegment(&out, name, views, wls); err != nil {
			t.Fatal(err)
		}
		golden.Compare(t, "testdata/describe-segment-"+name+".txt", out.Bytes())
	}
	if err := describeSegment(&bytes.Buffer{}, "nowhere", views, wls); err == nil {
		t.Error("describe of an unknown segment: no error")
	}
}

func TestFlowMatrix(t *testing.T) {
	segs, wls := segmentFixture()
	var out bytes.Buffer
	if err := printFlowMatrix(&out, segmentViews(segs, wls)); err != nil {
		t.Fatal(err)
	}
	golden.Compare(t, "testdata/flow-matrix.txt", out.Bytes())
}
