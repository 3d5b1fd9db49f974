// Package kubecmd_test tests strata's commands that talk to a Kubernetes cluster (apply and
// get workloads with --kubeconfig, export's policy check) against a real API server. They
// live in a test binary of their own so that the rest of the CLI's tests do not start a
// control plane.
package kubecmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/cli"
	"strata.dev/strata/internal/kube/kubetest"
)

var env kubetest.Env

func TestMain(m *testing.M) { os.Exit(env.Main(m)) }

// run runs strata with args and returns its exit code and output.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Execute(args, cli.Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

// writeKubeconfig writes a kubeconfig file for the test API server, as an administrator.
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	env.Need(t)
	cfg := env.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const shop = `
apiVersion: strata.dev/v1alpha1
kind: Segment
metadata: {name: front}
spec: {egress: allow}
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: web}
spec:
  image: registry.example/web:1
  replicas: 2
  segment: front
  ports: [{name: http, port: 8080}]
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: report}
spec:
  image: registry.example/report:1
  restartPolicy: OnFailure
  segment: front
`

// lines returns the non-empty lines of s, sorted.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// TestApplyKubeconfig: apply --kubeconfig prints what it did to each object, prints render's
// notes on stderr, changes nothing on a second run, and prunes a removed document's objects.
func TestApplyKubeconfig(t *testing.T) {
	kc, ns := writeKubeconfig(t), env.Namespace(t)
	file := writeFile(t, "shop.yaml", shop)
	code, stdout, stderr := run(t, "apply", "--kubeconfig", kc, "--namespace", ns, "-f", file)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	want := []string{"deployment/report created", "deployment/web created", "networkpolicy/segment-front created", "service/web created"}
	if got := lines(stdout); !slices.Equal(got, want) {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if !strings.Contains(stderr, "note: workload report: restartPolicy OnFailure does not map") {
		t.Errorf("stderr lacks render's note:\n%s", stderr)
	}

	_, stdout, _ = run(t, "apply", "--kubeconfig", kc, "--namespace", ns, "-f", file)
	for _, l := range lines(stdout) {
		if !strings.HasSuffix(l, " unchanged") {
			t.Errorf("second apply: %q, want unchanged", l)
		}
	}

	cut := shop[:strings.LastIndex(shop, "---")]
	code, stdout, stderr = run(t, "apply", "--kubeconfig", kc, "--namespace", ns, "-f", writeFile(t, "shop.yaml", cut))
	if code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "deployment/report pruned\n") || strings.Count(stdout, "pruned") != 1 {
		t.Errorf("after removing report:\n%s", stdout)
	}
	segment, _, _ := strings.Cut(shop, "---") // the Segment alone: web is not rendered
	code, stdout, _ = run(t, "apply", "--kubeconfig", kc, "--namespace", ns, "--no-prune", "-f", writeFile(t, "segment.yaml", segment))
	if code != cli.ExitOK || strings.Contains(stdout, "pruned") {
		t.Errorf("--no-prune: exit %d\n%s", code, stdout)
	}
}

// TestApplyKubeconfigWait: --wait gives up after --timeout, naming what is not ready.
func TestApplyKubeconfigWait(t *testing.T) {
	kc, ns := writeKubeconfig(t), env.Namespace(t)
	begin := time.Now()
	code, _, stderr := run(t, "apply", "--kubeconfig", kc, "-n", ns, "--wait", "--timeout", "1s", "-f", writeFile(t, "shop.yaml", shop))
	if code != cli.ExitFailure {
		t.Fatalf("exit %d, want %d\n%s", code, cli.ExitFailure, stderr)
	}
	if !strings.Contains(stderr, "deployment/web: 0 of 2 replicas ready") {
		t.Errorf("stderr does not say why web is not ready:\n%s", stderr)
	}
	if d := time.Since(begin); d > 20*time.Second {
		t.Errorf("took %v with --timeout 1s", d)
	}
}

const risky = `
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: risky}
spec:
  isolation: container
  image: registry.example/risky:1
  traits: {trust: untrusted}
`

// TestViolationNeedsForce: export and apply --kubeconfig refuse a workload whose explicit
// isolation violates the policy (exit 2, at its spec.isolation) unless --force.
func TestViolationNeedsForce(t *testing.T) {
	file := writeFile(t, "risky.yaml", risky)
	code, stdout, stderr := run(t, "export", "kubernetes", "-f", file)
	if code != cli.ExitInvalid || stdout != "" {
		t.Errorf("export: exit %d, stdout %q", code, stdout)
	}
	if !strings.Contains(stderr, "risky.yaml:") || !strings.Contains(stderr, "spec.isolation") || !strings.Contains(stderr, "--force") {
		t.Errorf("export's stderr:\n%s", stderr)
	}
	code, stdout, stderr = run(t, "export", "kubernetes", "-f", file, "--force")
	if code != cli.ExitOK || !strings.Contains(stdout, "kind: Deployment") || !strings.Contains(stderr, "assessment violation") {
		t.Errorf("export --force: exit %d\n%s\n%s", code, stdout, stderr)
	}

	kc, ns := writeKubeconfig(t), env.Namespace(t)
	code, stdout, stderr = run(t, "apply", "--kubeconfig", kc, "-n", ns, "-f", file)
	if code != cli.ExitInvalid || stdout != "" || !strings.Contains(stderr, "spec.isolation") {
		t.Errorf("apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "apply", "--kubeconfig", kc, "-n", ns, "-f", file, "--force")
	if code != cli.ExitOK || !strings.Contains(stdout, "deployment/risky created") {
		t.Errorf("apply --force: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestGetWorkloadsKubeconfig: get workloads --kubeconfig reads the workloads back, with the
// status the deployment controller (here the test) reports, as a table and as the daemon's
// JSON shape.
func TestGetWorkloadsKubeconfig(t *testing.T) {
	kc, ns := writeKubeconfig(t), env.Namespace(t)
	if code, _, stderr := run(t, "apply", "--kubeconfig", kc, "-n", ns, "-f", writeFile(t, "shop.yaml", shop)); code != cli.ExitOK {
		t.Fatalf("apply: exit %d\n%s", code, stderr)
	}
	c := env.Client(t)
	ctx := context.Background()
	var d appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &d); err != nil {
		t.Fatal(err)
	}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 2, ReadyReplicas: 1}
	if err := c.Status().Update(ctx, &d); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := run(t, "get", "workloads", "--kubeconfig", kc, "-n", ns, "-o", "json")
	if code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var list struct {
		Items []v1alpha1.Workload `json:"items"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(list.Items) != 2 {
		t.Fatalf("%d items, want 2:\n%s", len(list.Items), stdout)
	}
	web := list.Items[1]
	if web.Metadata.Name != "web" || web.Status == nil || web.Status.Tier != v1alpha1.TierContainer ||
		web.Status.Phase != v1alpha1.PhaseDegraded || web.Status.Replicas != 2 || web.Status.ReadyReplicas != 1 ||
		web.Spec.Segment != "front" || web.Kind != v1alpha1.KindWorkload {
		t.Errorf("web: %s", stdout)
	}

	code, stdout, _ = run(t, "get", "workloads", "--kubeconfig", kc, "-n", ns)
	if code != cli.ExitOK || !strings.HasPrefix(stdout, "NAME") {
		t.Fatalf("table: exit %d\n%s", code, stdout)
	}
	var webLine string
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(l, "web ") {
			webLine = l
		}
	}
	if f := strings.Fields(webLine); len(f) < 5 || f[1] != "container" || f[2] != "Degraded" || f[3] != "1/2" || f[4] != "Deployment" {
		t.Errorf("table row %q", webLine)
	}
}
