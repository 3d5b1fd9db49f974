package apply

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/kube/kubetest"
	"strata.dev/strata/internal/kube/render"
	"strata.dev/strata/internal/load"
)

var env kubetest.Env

func TestMain(m *testing.M) { os.Exit(env.Main(m)) }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// documents parses strata documents.
func documents(t *testing.T, file string, data []byte) render.Documents {
	t.Helper()
	objs, errs := load.File(file, data)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var docs render.Documents
	for _, o := range objs {
		switch v := o.Object.(type) {
		case *v1alpha1.Workload:
			docs.Workloads = append(docs.Workloads, *v)
		case *v1alpha1.Segment:
			docs.Segments = append(docs.Segments, *v)
		}
	}
	return docs
}

// estate is the mixed estate of render's golden tests: every tier and kind.
func estate(t *testing.T) render.Documents {
	t.Helper()
	file := filepath.Join("..", "render", "testdata", "estate.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return documents(t, file, data)
}

// renderIn renders docs for namespace ns, with a RuntimeClass of the test's own: tests share
// the cluster, and RuntimeClasses are cluster-wide.
func renderIn(t *testing.T, docs render.Documents, ns string) []render.Object {
	t.Helper()
	res, err := render.Render(docs, render.Options{Namespace: ns, RuntimeClass: "rc-" + ns})
	if err != nil {
		t.Fatal(err)
	}
	return res.Objects
}

// outcomes counts the changes by outcome.
func outcomes(res *Result) map[Outcome]int {
	n := map[Outcome]int{}
	for _, c := range res.Changes {
		n[c.Outcome]++
	}
	return n
}

// versions maps kind/namespace/name to resourceVersion for every object strata manages in
// ns, and the RuntimeClass rc.
func versions(t *testing.T, c client.Client, ns, rc string) map[string]string {
	t.Helper()
	out := map[string]string{}
	sel := labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy})
	for _, gvk := range namespacedKinds {
		items, err := list(testContext(t), c, gvk, sel, client.InNamespace(ns))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range items {
			out[gvk.Kind+"/"+u.GetName()] = u.GetResourceVersion()
		}
	}
	items, err := list(testContext(t), c, KindRuntimeClass, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range items {
		if u.GetName() == rc {
			out["RuntimeClass/"+u.GetName()] = u.GetResourceVersion()
		}
	}
	return out
}

// TestApplyEstate: the API server accepts every object render makes of the mixed estate
// (the VirtualMachines validated against KubeVirt's CRD schema), and applying the same
// documents again changes nothing: every resourceVersion stays.
func TestApplyEstate(t *testing.T) {
	c, ns := env.Client(t), env.Namespace(t)
	objs := renderIn(t, estate(t), ns)
	opts := Options{Namespace: ns, Prune: true}

	begin := time.Now()
	res, err := Apply(testContext(t), c, objs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first apply of %d objects: %v", len(objs), time.Since(begin))
	if n := outcomes(res); n[Created] != len(objs) || len(res.Changes) != len(objs) {
		t.Fatalf("first apply: %v, want %d created", n, len(objs))
	}
	before := versions(t, c, ns, "rc-"+ns)
	if len(before) != len(objs) {
		t.Fatalf("%d objects in the cluster, %d applied: %v", len(before), len(objs), before)
	}

	begin = time.Now()
	res, err = Apply(testContext(t), c, renderIn(t, estate(t), ns), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("re-apply: %v", time.Since(begin))
	if n := outcomes(res); n[Unchanged] != len(objs) {
		t.Errorf("re-apply: %v, want all %d unchanged: %v", n, len(objs), res.Changes)
	}
	after := versions(t, c, ns, "rc-"+ns)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: resourceVersion %s after re-applying, was %s", k, after[k], v)
		}
	}
}

const twoWorkloads = `
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: web}
spec:
  image: registry.example/web:1
  replicas: 2
  segment: front
  ports: [{name: http, port: 8080, publish: 18080}]
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: plugins}
spec:
  image: registry.example/plugins:1
  segment: front
  ports: [{name: http, port: 9000}]
  traits: {trust: untrusted}
`

// TestPrune: removing a document prunes exactly its objects (its RuntimeClass too, now that
// nothing uses it), and leaves alone look-alikes that lack strata's labels or belong to
// another apply set.
func TestPrune(t *testing.T) {
	c, ns := env.Client(t), env.Namespace(t)
	ctx := testContext(t)
	if _, err := Apply(ctx, c, renderIn(t, documents(t, "two.yaml", []byte(twoWorkloads)), ns), Options{Namespace: ns, Prune: true}); err != nil {
		t.Fatal(err)
	}
	lookAlikes := map[string]map[string]string{
		// a Deployment of the same workload that strata did not make
		"unlabelled": {render.LabelWorkload: "plugins"},
		// managed by strata, but by no apply set (the operator, or an older strata)
		"no-set": {render.LabelWorkload: "plugins", render.LabelManagedBy: render.ManagedBy},
		// another apply set in the same namespace
		"other-set": {render.LabelWorkload: "plugins", render.LabelManagedBy: render.ManagedBy, LabelApplySet: "other"},
	}
	for name, l := range lookAlikes {
		if err := c.Create(ctx, deployment(ns, name, l)); err != nil {
			t.Fatal(err)
		}
	}

	docs := documents(t, "two.yaml", []byte(twoWorkloads))
	docs.Workloads = docs.Workloads[:1] // plugins is gone
	res, err := Apply(ctx, c, renderIn(t, docs, ns), Options{Namespace: ns, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	var pruned []string
	for _, ch := range res.Changes {
		if ch.Outcome == Pruned {
			pruned = append(pruned, ch.Kind+"/"+ch.Name)
		}
	}
	slices.Sort(pruned)
	want := []string{"Deployment/plugins", "RuntimeClass/rc-" + ns, "Service/plugins"}
	if !slices.Equal(pruned, want) {
		t.Errorf("pruned %v, want %v", pruned, want)
	}
	got := versions(t, c, ns, "rc-"+ns)
	for _, k := range []string{"Deployment/web", "Service/web", "NetworkPolicy/web-published", "NetworkPolicy/segment-front", "Deployment/no-set", "Deployment/other-set"} {
		if _, ok := got[k]; !ok {
			t.Errorf("%s is gone; want it kept", k)
		}
	}
	for _, k := range want {
		if _, ok := got[k]; ok {
			t.Errorf("%s is still there", k)
		}
	}
	var d appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "unlabelled"}, &d); err != nil {
		t.Errorf("the unlabelled look-alike: %v", err)
	}
}

// TestRuntimeClassInUse: a RuntimeClass that a strata Deployment in another namespace still
// names is not pruned.
func TestRuntimeClassInUse(t *testing.T) {
	c, ns1, ns2 := env.Client(t), env.Namespace(t), env.Namespace(t)
	ctx := testContext(t)
	docs := documents(t, "two.yaml", []byte(twoWorkloads))
	rc := "rc-shared-" + ns1
	for _, ns := range []string{ns1, ns2} {
		res, err := render.Render(docs, render.Options{Namespace: ns, RuntimeClass: rc})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Apply(ctx, c, res.Objects, Options{Namespace: ns, Prune: true}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Apply(ctx, c, nil, Options{Namespace: ns1, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range res.Changes {
		if ch.Kind == KindRuntimeClass.Kind {
			t.Errorf("%s while namespace %s still runs sandboxes", ch, ns2)
		}
	}
	if _, ok := versions(t, c, ns2, rc)["RuntimeClass/"+rc]; !ok {
		t.Errorf("RuntimeClass %s is gone", rc)
	}
}

func deployment(ns, name string, l map[string]string) *appsv1.Deployment {
	sel := map[string]string{"app": name}
	tmpl := map[string]string{"app": name}
	for k, v := range l {
		tmpl[k] = v
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: sel},
		},
	}
	d.Spec.Template.Labels = tmpl
	d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Image: "registry.example/x:1"}}
	return d
}

// TestConflict: a field that another manager owns stops the apply with an error naming the
// object and the manager; ForceConflicts takes it over.
func TestConflict(t *testing.T) {
	c, ns := env.Client(t), env.Namespace(t)
	ctx := testContext(t)
	docs := documents(t, "two.yaml", []byte(twoWorkloads))
	if _, err := Apply(ctx, c, renderIn(t, docs, ns), Options{Namespace: ns}); err != nil {
		t.Fatal(err)
	}
	other := &unstructured.Unstructured{}
	other.SetGroupVersionKind(KindDeployment)
	other.SetNamespace(ns)
	other.SetName("web")
	if err := unstructured.SetNestedField(other.Object, int64(5), "spec", "replicas"); err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(other), client.FieldOwner("autoscaler"), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}

	_, err := Apply(ctx, c, renderIn(t, docs, ns), Options{Namespace: ns})
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *ConflictError", err)
	}
	for _, want := range []string{"deployment/web", ns, `"autoscaler"`, ".spec.replicas", "--force-conflicts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}

	res, err := Apply(ctx, c, renderIn(t, docs, ns), Options{Namespace: ns, ForceConflicts: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range res.Changes {
		if ch.Name == "web" && ch.Kind == "Deployment" && ch.Outcome != Configured {
			t.Errorf("%s, want configured", ch)
		}
	}
}

const waitDocs = `
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: api}
spec:
  image: registry.example/api:1
  replicas: 2
---
apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: edge}
spec:
  isolation: vm
  vm: {containerDisk: registry.example/disks/edge:1}
`

// TestWaitTimeout: with no controller to make the Deployment ready, the wait times out and
// names the Deployment and why.
func TestWaitTimeout(t *testing.T) {
	c, ns := env.Client(t), env.Namespace(t)
	var progress bytes.Buffer
	_, err := Apply(testContext(t), c, renderIn(t, documents(t, "wait.yaml", []byte(waitDocs)), ns),
		Options{Namespace: ns, Wait: true, Timeout: 1500 * time.Millisecond, Poll: 100 * time.Millisecond, Progress: &progress})
	var nre *NotReadyError
	if !errors.As(err, &nre) {
		t.Fatalf("got %v, want a *NotReadyError", err)
	}
	for _, want := range []string{"deployment/api:", "virtualmachine/edge:", "no status yet", "not ready after 1.5s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !strings.Contains(progress.String(), "api") || !strings.Contains(progress.String(), "0/2 waiting") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

// TestWaitReady: the wait ends once the test, as the controllers would, reports the
// Deployment's replicas ready and the VirtualMachine running; Status then reads them back.
func TestWaitReady(t *testing.T) {
	c, ns := env.Client(t), env.Namespace(t)
	ctx := testContext(t)
	objs := renderIn(t, documents(t, "wait.yaml", []byte(waitDocs)), ns)
	done := make(chan error, 1)
	var progress bytes.Buffer
	go func() {
		_, err := Apply(ctx, c, objs, Options{Namespace: ns, Wait: true, Timeout: time.Minute, Poll: 100 * time.Millisecond, Progress: &progress})
		done <- err
	}()

	// The deployment controller: it observes the generation and reports the replicas ready.
	var d appsv1.Deployment
	waitFor(t, func() error { return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "api"}, &d) })
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, UpdatedReplicas: 2}
	if err := c.Status().Update(ctx, &d); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("the wait ended before the VM was ready: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	// virt-controller: the VM runs.
	var vm kubevirtv1.VirtualMachine
	waitFor(t, func() error { return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "edge"}, &vm) })
	vm.Status = kubevirtv1.VirtualMachineStatus{Ready: true, PrintableStatus: kubevirtv1.VirtualMachineStatusRunning, Created: true}
	if err := c.Status().Update(ctx, &vm); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("wait: %v\nprogress:\n%s", err, progress.String())
	}
	if !strings.Contains(progress.String(), "2/2 ready") {
		t.Errorf("progress never showed api ready:\n%s", progress.String())
	}

	st, err := Status(ctx, c, ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 {
		t.Fatalf("status of %d workloads, want 2: %+v", len(st), st)
	}
	api, edge := st[0], st[1]
	if api.Name != "api" || api.Tier != v1alpha1.TierContainer || api.Replicas != 2 || api.ReadyReplicas != 2 || api.Phase() != v1alpha1.PhaseRunning || api.Image != "registry.example/api:1" {
		t.Errorf("api: %+v (phase %s)", api, api.Phase())
	}
	if edge.Name != "edge" || edge.Tier != v1alpha1.TierVM || edge.Kind != "VirtualMachine" || len(edge.VMs) != 1 || edge.VMs[0].PrintableStatus != "Running" || edge.Phase() != v1alpha1.PhaseRunning {
		t.Errorf("edge: %+v (phase %s)", edge, edge.Phase())
	}
}

// waitFor retries f until it succeeds, for up to 30 s.
func waitFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
