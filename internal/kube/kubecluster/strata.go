package kubecluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"strata.dev/strata/deploy/crds"
)

// This file holds what a test needs to run strata itself against the
// cluster: the strata command, run inside the cluster's network namespace,
// and the CRDs of deploy/crds.

// Kubeconfig returns the path of the administrator's kubeconfig. Its server
// address is inside the cluster's network namespace: use it from a program
// run with Exec.
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.Dir, "admin.kubeconfig") }

// BuildStrata builds the strata command (./cmd/strata of this module) into
// the cluster directory and returns its path. It is built without cgo, a
// static program, so that the same file also runs in a container image
// that holds nothing else (DeployOperator).
func (c *Cluster) BuildStrata(ctx context.Context) (string, error) {
	goBin, err := goTool()
	if err != nil {
		return "", err
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	out := filepath.Join(c.Dir, "strata")
	build := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/strata")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build strata: %w: %s", err, b)
	}
	return out, nil
}

// Exec runs a program inside the cluster's network namespace (where the
// kubeconfig's server address is) and returns its standard output and
// standard error, in that order.
func (c *Cluster) Exec(ctx context.Context, path string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + c.Name, path}, args...)...) //nolint:gosec // G204: the test's own program
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// InstallCRDs creates the CRDs of deploy/crds (strata's Workload and
// Segment, KubeVirt's VirtualMachine and VirtualMachineInstance) and waits
// until the API server serves them.
func (c *Cluster) InstallCRDs(ctx context.Context) error {
	objs, err := crds.Decode()
	if err != nil {
		return err
	}
	cs, err := apiextensions.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	api := cs.ApiextensionsV1().CustomResourceDefinitions()
	for _, crd := range objs {
		if _, err := api.Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("install CRD %s: %w", crd.Name, err)
		}
	}
	for _, crd := range objs {
		for {
			got, err := api.Get(ctx, crd.Name, metav1.GetOptions{})
			if err == nil && established(got) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("CRD %s not established: %w", crd.Name, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, cond := range crd.Status.Conditions {
		if cond.Type == apiextensionsv1.Established {
			return cond.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}
