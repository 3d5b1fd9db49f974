package kubecluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"strata.dev/strata/internal/kube/kubetest"
)

// TestDeploymentRuns starts a cluster, creates a Deployment of the busybox
// test image and waits until its pod is Running on the node and its log,
// read through the API server from the kubelet, has the line it printed.
// Then it stops the cluster and checks that nothing of it is left.
func TestDeploymentRuns(t *testing.T) {
	c := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const ns, line = "default", "strata kubecluster: hello from a pod"
	one := int32(1)
	labels := map[string]string{"app": "hello"}
	never := corev1.PullNever
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:            "hello",
						Image:           BusyboxImage,
						ImagePullPolicy: never,
						Command:         []string{"sh", "-c", "echo '" + line + "'; exec sleep 3600"},
					}},
				},
			},
		},
	}
	created := time.Now()
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the Deployment: %v", err)
	}
	var pod corev1.Pod
	for pod.Status.Phase != corev1.PodRunning {
		if time.Since(created) > 2*time.Minute {
			t.Fatalf("the Deployment's pod is not Running after 2 minutes: %s", Describe(&pod))
		}
		time.Sleep(time.Second)
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
		if err != nil || len(pods.Items) == 0 {
			continue
		}
		pod = pods.Items[0]
	}
	t.Logf("pod %s Running on %s (IP %s) %.1fs after the Deployment was created",
		pod.Name, pod.Spec.NodeName, pod.Status.PodIP, time.Since(created).Seconds())
	if pod.Spec.NodeName != nodeName {
		t.Errorf("pod runs on node %q, want %q", pod.Spec.NodeName, nodeName)
	}
	var logs string
	for !strings.Contains(logs, line) {
		lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
		b, err := c.Client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(lctx)
		lcancel()
		logs = string(b)
		if err != nil {
			t.Logf("read the pod's log: %v", err)
		}
		if time.Since(created) > 2*time.Minute {
			t.Fatalf("the pod's log has no line %q: %q (%v)", line, logs, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	dir, name := c.Dir, c.Name
	stopping := time.Now()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster stopped in %.1fs", time.Since(stopping).Seconds())
	if l := Leftovers(dir, name); !l.Empty() {
		t.Errorf("the stopped cluster left %s", l)
	}
}

// TestSkipNamesTheBuild checks that a host with the API server and etcd but
// not the cluster binaries skips, naming the command that builds them.
func TestSkipNamesTheBuild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: Skip checks for root first")
	}
	dir := t.TempDir()
	for name, script := range map[string]string{
		"kube-apiserver": "#!/bin/sh\necho 'Kubernetes " + kubetest.Version + "'\n",
		"etcd":           "#!/bin/sh\necho 'etcd Version: 3.6.8'\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(kubetest.AssetsEnv, dir)
	why := Skip()
	for _, want := range []string{"kube-controller-manager", dir, "STRATA_KUBE_CLUSTER=1 hack/kube-binaries.sh"} {
		if !strings.Contains(why, want) {
			t.Errorf("Skip() = %q, want it to name %q", why, want)
		}
	}
}
