package kubecluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"strata.dev/strata/internal/kube/render"
)

// hybridWorkloads are the pods `strata apply` of examples/hybrid and
// testdata/health.yaml must make Ready: workload, replicas and the runtime
// its tier runs under. ledger, a VM, becomes a VirtualMachine that no
// KubeVirt runs here.
var hybridWorkloads = []struct {
	name     string
	replicas int
	runtime  string
}{
	{"storefront", 2, "runc"},
	{"catalog", 1, "runc"},
	{"plugin-runner", 1, "runsc"},
	{"wedging", 1, "runc"},
}

// TestHybridExample runs `strata apply --kubeconfig` of the repository's
// hybrid example (plus a workload whose health check fails after a while)
// on the cluster: every container and sandbox workload becomes Ready pods,
// the sandbox's under runsc; each Service answers a pod of the web segment
// with its workload's page; the VM is a VirtualMachine; and the health
// check, rendered as probes, restarts the workload that stops answering it.
func TestHybridExample(t *testing.T) {
	c := Start(t)
	needRunsc(t, c, "the example has a sandbox")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if err := c.InstallCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	strata, err := c.BuildStrata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	example, err := filepath.Abs("../../../examples/hybrid/app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	health, err := filepath.Abs("testdata/health.yaml")
	if err != nil {
		t.Fatal(err)
	}
	applied := time.Now()
	out, notes, err := c.Exec(ctx, strata, "apply", "-f", example, "-f", health, "--kubeconfig", c.Kubeconfig())
	t.Logf("strata apply --kubeconfig:\n%s%s", out, notes)
	if err != nil {
		t.Fatalf("strata apply: %v", err)
	}
	for _, w := range hybridWorkloads {
		if _, err := c.WaitReady(ctx, "default", "strata.dev/workload="+w.name, w.replicas); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("every pod Ready %.1fs after strata apply started", time.Since(applied).Seconds())
	if table, _, err := c.Exec(ctx, strata, "get", "workloads", "--kubeconfig", c.Kubeconfig()); err == nil {
		t.Logf("strata get workloads --kubeconfig:\n%s", table)
	}

	runtimes, err := c.PodRuntimes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range hybridWorkloads {
		pods, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "strata.dev/workload=" + w.name})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			rt := runtimes["default/"+p.Name]
			mem := ""
			if usage, limit, err := c.PodMemory(string(p.UID)); err == nil {
				mem = fmt.Sprintf(", memory %.1f of %.0f MiB", float64(usage)/(1<<20), float64(limit)/(1<<20))
			}
			t.Logf("pod %s (workload %s, tier %s) runs under %s%s", p.Name, w.name, p.Labels["strata.dev/tier"], rt, mem)
			if rt != w.runtime {
				t.Errorf("pod %s of %s runs under %q, want %s", p.Name, w.name, rt, w.runtime)
			}
			// A sandbox's pod gets its workload's memory plus the
			// RuntimeClass's overhead, which gVisor itself uses.
			if w.runtime == "runsc" {
				overhead := resource.MustParse(render.SandboxMemoryOverhead)
				want := p.Spec.Containers[0].Resources.Limits.Memory().Value() + overhead.Value()
				if _, limit, err := c.PodMemory(string(p.UID)); err != nil || limit != want {
					t.Errorf("pod %s's memory limit is %d (%v), want %d: the workload's and the RuntimeClass's overhead", p.Name, limit, err, want)
				}
			}
		}
	}

	// The Services answer, through their ClusterIPs, a pod of the web
	// segment (the storefront's, which every segment admits).
	askServices(ctx, t, c, "web-client")

	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := dyn.Resource(schema.GroupVersionResource{Group: "kubevirt.io", Version: "v1", Resource: "virtualmachines"}).
		Namespace("default").Get(ctx, "ledger", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the ledger VM: %v", err)
	}
	rs, _, _ := unstructured.NestedString(vm.Object, "spec", "runStrategy")
	t.Logf("VirtualMachine ledger stored (runStrategy %s); no KubeVirt runs it here", rs)

	// wedging's health check fails 20 s after it starts: its liveness
	// probe must restart it, and it must be Ready again after.
	var pod *corev1.Pod
	for pod == nil || pod.Status.ContainerStatuses[0].RestartCount == 0 || !IsReady(pod) {
		if ctx.Err() != nil {
			t.Fatalf("wedging was not restarted by its liveness probe and Ready again: %s", Describe(pod))
		}
		time.Sleep(time.Second)
		pods, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "strata.dev/workload=wedging"})
		if err == nil && len(pods.Items) == 1 && len(pods.Items[0].Status.ContainerStatuses) == 1 {
			pod = &pods.Items[0]
		}
	}
	cs := pod.Status.ContainerStatuses[0]
	reason := ""
	if t := cs.LastTerminationState.Terminated; t != nil {
		reason = fmt.Sprintf("exit %d (%s)", t.ExitCode, t.Reason)
	}
	t.Logf("wedging restarted %d time(s) by its liveness probe, last end %s, Ready again %.1fs after apply",
		cs.RestartCount, reason, time.Since(applied).Seconds())
	events, err := c.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod.Name})
	if err != nil {
		t.Fatal(err)
	}
	killed := false
	for _, e := range events.Items {
		if e.Reason == "Killing" && strings.Contains(e.Message, "liveness probe") {
			killed = true
			t.Logf("event: %s %s", e.Reason, e.Message)
		}
	}
	if !killed {
		t.Errorf("no Killing event for a failed liveness probe of %s", pod.Name)
	}
}

// askServices has a pod of the web segment (the storefront's, which every
// segment of the hybrid example admits) ask each of the example's Services,
// through its ClusterIP, for its workload's page, and checks the answers.
func askServices(ctx context.Context, t *testing.T, c *Cluster, client string) {
	t.Helper()
	pages := map[string]string{"storefront": "storefront ", "catalog": `["lamp", "desk"]`, "plugin-runner": "plugins ok"}
	paths := map[string]string{"storefront": "/", "catalog": "/items.json", "plugin-runner": "/"}
	var script strings.Builder
	for name := range pages {
		svc, err := c.Client.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		port := svc.Spec.Ports[0].Port
		fmt.Fprintf(&script, "echo \"== %s\"; printf 'GET %s HTTP/1.0\\r\\n\\r\\n' | nc -w 5 %s %d | tail -n 1\n",
			name, paths[name], svc.Spec.ClusterIP, port)
	}
	answers, err := c.RunScript(ctx, Script{Name: client, Namespace: "default",
		Labels: map[string]string{"strata.dev/segment": "web"}, Script: script.String()})
	t.Logf("a web pod asks each Service:\n%s", answers)
	if err != nil {
		t.Fatal(err)
	}
	for name, page := range pages {
		if !strings.Contains(answerOf(answers, name), page) {
			t.Errorf("Service %s answered %q, want %q", name, answerOf(answers, name), page)
		}
	}
}

// answerOf returns the line after "== name" in a script's log.
func answerOf(log, name string) string {
	lines := strings.Split(log, "\n")
	for i, l := range lines {
		if l == "== "+name && i+1 < len(lines) {
			return lines[i+1]
		}
	}
	return ""
}
