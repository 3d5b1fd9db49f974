package kubecluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestServiceAnswers checks that kube-proxy, started by the harness, wires
// Services: a pod connects to a Service's ClusterIP (port 80) and gets the
// page of one of the Deployment's two pods behind it (port 8080).
func TestServiceAnswers(t *testing.T) {
	c := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const ns = "default"
	labels := map[string]string{"app": "echo"}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, httpdDeployment("echo", labels, 2, 8080), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := c.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	backends, err := c.WaitReady(ctx, ns, "app=echo", 2)
	if err != nil {
		t.Fatal(err)
	}
	ip := svc.Spec.ClusterIP
	t.Logf("Service echo: ClusterIP %s, backends %s (%s) and %s (%s)", ip,
		backends[0].Name, backends[0].Status.PodIP, backends[1].Name, backends[1].Status.PodIP)
	// kube-proxy programs the Service once its endpoints are ready: the
	// client tries for up to 30 s, then asks six times more.
	out, err := c.RunScript(ctx, Script{Name: "client", Namespace: ns, Script: fmt.Sprintf(`
for i in $(seq 30); do nc -w 2 %[1]s 80 </dev/null >/dev/null 2>&1 && break; sleep 1; done
for i in $(seq 6); do printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %[1]s 80 | tail -n 1; done
`, ip)})
	t.Logf("answers from %s:80:\n%s", ip, out)
	if err != nil {
		t.Fatal(err)
	}
	answered := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		for _, b := range backends {
			if strings.TrimSpace(line) == "page of "+b.Name {
				answered[b.Name] = true
			}
		}
	}
	if len(answered) == 0 {
		t.Fatalf("the ClusterIP %s:80 gave no backend's page: %q", ip, out)
	}
	t.Logf("%d of 2 backends answered through the ClusterIP", len(answered))
}

// httpdDeployment is a Deployment of busybox httpd pods that serve the
// page "page of POD" on port.
func httpdDeployment(name string, labels map[string]string, replicas int32, port int) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name: "httpd", Image: BusyboxImage, ImagePullPolicy: corev1.PullNever,
						Command: []string{"sh", "-c", fmt.Sprintf(
							"mkdir -p /www; echo \"page of $HOSTNAME\" > /www/index.html; exec httpd -f -p %d -h /www", port)},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
}
