package kubecluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Script is a pod that runs a shell script once in the busybox test image
// (sh -c), for what a test must see from inside the cluster: a Service's
// answer, a connection a NetworkPolicy admits or drops. What the script
// prints is its result.
type Script struct {
	Name, Namespace string
	Labels          map[string]string // the pod's labels (NetworkPolicies select by them)
	RuntimeClass    string            // runtimeClassName; "" for the default (runc)
	Script          string
}

// RunScript runs s to its end and returns its log: the pod is created with
// restartPolicy Never, waited for until it Succeeded or Failed, its log
// read, and the pod deleted. A script that exits non-zero is an error that
// holds its log.
func (c *Cluster) RunScript(ctx context.Context, s Script) (string, error) {
	never := corev1.PullNever
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: s.Labels},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "script", Image: BusyboxImage, ImagePullPolicy: never,
				Command: []string{"sh", "-c", s.Script},
			}},
		},
	}
	if s.RuntimeClass != "" {
		pod.Spec.RuntimeClassName = &s.RuntimeClass
	}
	pods := c.Client.CoreV1().Pods(s.Namespace)
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("script pod %s: %w", s.Name, err)
	}
	defer func() {
		grace := int64(0)
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = pods.Delete(dctx, s.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	}()
	var p *corev1.Pod
	for {
		var err error
		p, err = pods.Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("script pod %s: %w", s.Name, err)
		}
		if p != nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
			break
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("script pod %s did not finish: %w (%s)", s.Name, ctx.Err(), Describe(p))
		case <-time.After(500 * time.Millisecond):
		}
	}
	b, err := pods.GetLogs(s.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("script pod %s: read its log: %w", s.Name, err)
	}
	if p.Status.Phase == corev1.PodFailed {
		return string(b), fmt.Errorf("script pod %s failed (%s); its log:\n%s", s.Name, Describe(p), b)
	}
	return string(b), nil
}

// WaitLog waits until the log of pod's (first) container holds want and
// returns it.
func (c *Cluster) WaitLog(ctx context.Context, ns, pod, want string) (string, error) {
	var last string
	var lastErr error
	for {
		b, err := c.Client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err == nil && strings.Contains(string(b), want) {
			return string(b), nil
		}
		last, lastErr = string(b), err
		select {
		case <-ctx.Done():
			p, _ := c.Client.CoreV1().Pods(ns).Get(context.Background(), pod, metav1.GetOptions{})
			return last, fmt.Errorf("the log of pod %s/%s has no %q: %w (log %q, last error %s; %s)", ns, pod, want, ctx.Err(), last, fmt.Sprint(lastErr), Describe(p))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// WaitReady waits until want pods match the label selector in ns and all
// of them are Ready, and returns them.
func (c *Cluster) WaitReady(ctx context.Context, ns, selector string, want int) ([]corev1.Pod, error) {
	var last string
	for {
		list, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil {
			var ready []corev1.Pod
			var waiting []string
			for i := range list.Items {
				p := &list.Items[i]
				if p.DeletionTimestamp == nil && IsReady(p) {
					ready = append(ready, *p)
				} else {
					waiting = append(waiting, Describe(p))
				}
			}
			if len(ready) == want && len(waiting) == 0 {
				return ready, nil
			}
			last = fmt.Sprintf("%d of %d Ready; %s", len(ready), want, strings.Join(waiting, "; "))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pods %s in %s not Ready: %w (%s)", selector, ns, ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// IsReady reports whether a pod's Ready condition is True.
func IsReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Describe says where a pod is: its phase and what its containers wait
// for, or the conditions that are not True.
func Describe(p *corev1.Pod) string {
	if p == nil || p.Name == "" {
		return "no pod yet"
	}
	s := p.Name + " phase " + string(p.Status.Phase)
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			s += "; " + cs.Name + " waiting: " + w.Reason + ": " + w.Message
		}
		if t := cs.State.Terminated; t != nil {
			s += fmt.Sprintf("; %s exited %d: %s", cs.Name, t.ExitCode, t.Reason)
		}
	}
	for _, cond := range p.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			s += "; " + string(cond.Type) + ": " + cond.Reason + " " + cond.Message
		}
	}
	return s
}
