package kubecluster

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestGVisorRuntimeClass checks the gvisor RuntimeClass: a pod that names
// it runs under runsc, which the pod itself shows (gVisor's kernel log and
// its own kernel release), and which containerd's record of the pod's
// sandbox shows; a pod without it runs under runc on the host's kernel.
func TestGVisorRuntimeClass(t *testing.T) {
	c := Start(t)
	needRunsc(t, c, "the test runs a pod under runsc")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if _, err := c.Client.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "gvisor"}, Handler: GVisorHandler,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The pods print and stay: with runc's shim running runsc, a gVisor
	// pod's container that ends is not seen to end (docs/kubernetes-tests.md).
	const script = `echo "release $(uname -r)"; dmesg 2>&1 | head -n 3; echo done; exec sleep 3600`
	pods := map[string]string{"sandboxed": "gvisor", "plain": ""}
	for name, rc := range pods {
		pod := sleeper(name, map[string]string{"probe": name}, script)
		if rc != "" {
			pod.Spec.RuntimeClassName = &rc
		}
		if _, err := c.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	logs := map[string]string{}
	for name := range pods {
		log, err := c.WaitLog(ctx, "default", name, "done\n")
		if err != nil {
			t.Fatal(err)
		}
		logs[name] = log
	}
	runtimes, err := c.PodRuntimes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for pod, rt := range runtimes {
		t.Logf("pod %s runs under %s", pod, rt)
	}
	if got := runtimes["default/sandboxed"]; got != "runsc" {
		t.Errorf("the pod with runtimeClassName gvisor runs under %q, want runsc", got)
	}
	if got := runtimes["default/plain"]; got != "runc" {
		t.Errorf("the pod without a RuntimeClass runs under %q, want runc", got)
	}
	sandboxed, plain := logs["sandboxed"], logs["plain"]
	t.Logf("the gvisor pod printed:\n%s", sandboxed)
	t.Logf("the runc pod printed:\n%s", plain)
	if !strings.Contains(sandboxed, "gVisor") {
		t.Errorf("the gvisor pod's kernel log does not show gVisor")
	}
	if strings.Contains(plain, "gVisor") {
		t.Errorf("the runc pod's output shows gVisor")
	}
	if release(sandboxed) == release(plain) {
		t.Errorf("both pods report kernel release %q: the gvisor pod should see gVisor's, not the host's", release(plain))
	}
}

// release returns the kernel release a script's "release R" line gives.
func release(log string) string {
	for line := range strings.SplitSeq(log, "\n") {
		if r, ok := strings.CutPrefix(line, "release "); ok {
			return r
		}
	}
	return ""
}

// sleeper is a pod of the busybox image that runs script.
func sleeper(name string, labels map[string]string, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name: "main", Image: BusyboxImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"sh", "-c", script},
			}},
		},
	}
}
