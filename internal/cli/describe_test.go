package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"text/tabwriter"
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
	if err := describeWorkload(&out, w, nil, nil); err != nil {
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
	if err := describeWorkload(&out, w, nil, nil); err != nil {
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

// TestDescribeWorkloadNodeVM: describe says where the replicas run and why, from the
// assessment the daemon stored, against a golden file.
func TestDescribeWorkloadNodeVM(t *testing.T) {
	two := int32(2)
	tests := []struct {
		name   string
		tier   v1alpha1.Tier
		nodeVM *v1alpha1.NodeVMDecision
	}{
		{"vault", v1alpha1.TierSandbox, &v1alpha1.NodeVMDecision{Run: true, Class: "acme/internal/regulated", Reason: "policy: data regulated"}},
		{"web", v1alpha1.TierContainer, &v1alpha1.NodeVMDecision{Class: "shop/internal/internal", Reason: "policy: tenancy single, data internal"}},
		{"cache", v1alpha1.TierContainer, &v1alpha1.NodeVMDecision{Class: "acme/internal/internal", Reason: "placement.nodeVM never",
			Warning: "placement.nodeVM never keeps class acme/internal/internal on the host's kernel, but the policy sends it into node VMs (policy: tenancy multi); remove placement.nodeVM to follow the policy"}},
		{"billing", v1alpha1.TierVM, &v1alpha1.NodeVMDecision{Reason: "tier vm: each replica is a VM of its own"}},
		{"stored-before-node-vms", v1alpha1.TierContainer, nil},
	}
	var out bytes.Buffer
	for _, tt := range tests {
		w := &v1alpha1.Workload{Metadata: v1alpha1.ObjectMeta{Name: tt.name, Generation: 1, ResourceVersion: "7"}, Spec: v1alpha1.WorkloadSpec{
			Image: "localhost/acme/" + tt.name + ":1", Replicas: &two, Isolation: v1alpha1.IsolationAuto, Segment: "default",
			RestartPolicy: v1alpha1.RestartAlways, Resources: v1alpha1.Resources{CPU: resource.MustParse("250m"), Memory: resource.MustParse("64Mi")},
		}, Status: &v1alpha1.WorkloadStatus{Tier: tt.tier, Phase: v1alpha1.PhasePending, NodeVM: tt.nodeVM}}
		switch tt.name {
		case "vault", "web":
			// Running: in the node VM the daemon lists, and on the host.
			drv := map[string]string{"vault": "nodevm", "web": "containerd"}[tt.name]
			for _, id := range []string{tt.name + "-0", tt.name + "-1"} {
				w.Status.Instances = append(w.Status.Instances, v1alpha1.Instance{ID: id, Tier: tt.tier, Driver: drv, State: "running", PID: 4242})
			}
		}
		nodes := []v1alpha1.NodeVM{{Name: "nodevm-3f9c0e21a7b4", Class: "acme/internal/regulated", State: "running",
			Replicas: []v1alpha1.NodeVMReplica{{ID: "vault-0", Workload: "vault"}, {ID: "vault-1", Workload: "vault"}}}}
		fmt.Fprintf(&out, "$ strata describe workload %s\n", tt.name)
		if err := describeWorkload(&out, w, nil, nodes); err != nil {
			t.Fatal(err)
		}
		out.WriteString("\n")
	}
	t.Chdir("../..")
	compareGolden(t, "describe-workload-nodevm.txt", out.String())
}

// TestPrintNodes: get nodes prints each node VM's class, its shape's name, its replicas'
// requests over its shape, their count, its state and age; -o wide names the replicas.
func TestPrintNodes(t *testing.T) {
	started := time.Now().Add(-3 * time.Minute)
	items := []v1alpha1.NodeVM{
		{Name: "nodevm-3f9c0e21a7b4", Class: "acme/internal/internal", State: "running", StartedAt: &started, ShapeName: "small",
			Shape:    v1alpha1.Capacity{CPU: resource.MustParse("1"), Memory: resource.MustParse("1Gi")},
			Usage:    v1alpha1.Capacity{CPU: resource.MustParse("100m"), Memory: resource.MustParse("32Mi")},
			Replicas: []v1alpha1.NodeVMReplica{{ID: "shop-0", Workload: "shop"}, {ID: "shop-1", Workload: "shop"}}},
		{Name: "nodevm-77d0a4b9e2c1", Class: "globex/untrusted/internal", State: "running", StartedAt: &started,
			Shape:    v1alpha1.Capacity{CPU: resource.MustParse("1"), Memory: resource.MustParse("1Gi")},
			Usage:    v1alpha1.Capacity{CPU: resource.MustParse("0"), Memory: resource.MustParse("0")},
			Replicas: []v1alpha1.NodeVMReplica{}},
	}
	var raws []json.RawMessage
	for _, n := range items {
		b, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, b)
	}
	for wide, want := range map[bool][]string{
		false: {"NAME CLASS SHAPE CPU MEMORY REPLICAS STATE AGE",
			"nodevm-3f9c0e21a7b4 acme/internal/internal small 100m/1 32Mi/1.0Gi 2 running 3m",
			"nodevm-77d0a4b9e2c1 globex/untrusted/internal - 0/1 0Mi/1.0Gi 0 running 3m"},
		true: {"AGE INSTANCES", "3m shop-0,shop-1", "running 3m -"},
	} {
		var out bytes.Buffer
		tw := tabwriter.NewWriter(&out, 0, 4, 2, ' ', 0)
		if err := printNodes(tw, raws, wide); err != nil {
			t.Fatal(err)
		}
		_ = tw.Flush()
		for _, w := range want {
			if !strings.Contains(squeeze(out.String()), w) {
				t.Errorf("wide=%v: the table lacks %q:\n%s", wide, w, out.String())
			}
		}
	}
}
