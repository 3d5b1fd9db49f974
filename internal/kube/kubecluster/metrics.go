package kubecluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"

	"strata.dev/strata/internal/kube/kubetest"
)

// frontProxyName is the common name of the API server's certificate for
// aggregated APIs, the only one they accept forwarded users from.
const frontProxyName = "strata-test-front-proxy"

// metricsPort is metrics-server's port on the node's address.
const metricsPort = 4443

// ErrNoMetricsServer says that metrics-server is not built (ServeMetrics);
// a test skips on it.
var ErrNoMetricsServer = errors.New("no metrics-server: run `STRATA_KUBE_CLUSTER=1 hack/kube-binaries.sh` (it builds metrics-server)")

// metricsAPI names the APIService of the metrics API.
const metricsAPI = "v1beta1.metrics.k8s.io"

// ServeMetrics starts metrics-server (built by hack/kube-binaries.sh with
// STRATA_KUBE_CLUSTER=1) as a process of the cluster, on the node's
// address, and registers it as the metrics.k8s.io API: an APIService
// pointing at a Service without selector whose endpoint is that address.
// It returns once the API server reports the APIService Available. The
// HPA controller and the operator's MetricsSource then read pods' CPU.
func (c *Cluster) ServeMetrics(ctx context.Context) error {
	assets, err := kubetest.Assets()
	if err != nil {
		return err
	}
	bin := filepath.Join(assets, "metrics-server")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w (%s)", ErrNoMetricsServer, bin)
	}
	kc := filepath.Join(c.Dir, "admin.kubeconfig")
	if err := c.run("metrics-server", bin,
		"--kubeconfig", kc, "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
		"--bind-address", nodeIP, "--secure-port", strconv.Itoa(metricsPort),
		"--cert-dir", filepath.Join(c.Dir, "pki", "metrics-server"),
		// The kubelet's serving certificate is its own, signed by no CA.
		"--kubelet-insecure-tls", "--kubelet-preferred-address-types", "InternalIP",
		"--metric-resolution", "15s"); err != nil {
		return err
	}
	const ns, name = "kube-system", "metrics-server"
	if _, err := c.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(metricsPort)}}},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("metrics-server: %w", err)
	}
	//nolint:staticcheck // SA1019: the EndpointSlice mirroring controller makes the slice from it
	if _, err := c.Client.CoreV1().Endpoints(ns).Create(ctx, &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: nodeIP}},
			Ports:     []corev1.EndpointPort{{Name: "https", Port: metricsPort}},
		}},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("metrics-server: %w", err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	apiServices := dyn.Resource(schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"})
	svc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": metricsAPI},
		"spec": map[string]any{
			"service": map[string]any{"namespace": ns, "name": name, "port": int64(443)},
			"group":   "metrics.k8s.io", "version": "v1beta1",
			"insecureSkipTLSVerify": true, // metrics-server's certificate is its own
			"groupPriorityMinimum":  int64(100), "versionPriority": int64(100),
		},
	}}
	if _, err := apiServices.Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("metrics-server: %w", err)
	}
	return c.poll(ctx, "the metrics API Available", func(ctx context.Context) (bool, error) {
		s, err := apiServices.Get(ctx, metricsAPI, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // not there yet: ask again
		}
		conds, _, _ := unstructured.NestedSlice(s.Object, "status", "conditions")
		for _, cond := range conds {
			if m, ok := cond.(map[string]any); ok && m["type"] == "Available" {
				return m["status"] == "True", nil
			}
		}
		return false, nil
	})
}
