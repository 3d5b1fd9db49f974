package apicheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"strata.dev/strata/internal/importer/kube"
	"strata.dev/strata/internal/kube/kubetest"
	"strata.dev/strata/internal/load"
)

var env kubetest.Env

func TestMain(m *testing.M) { os.Exit(env.Main(m)) }

// builtin are the API groups the test control plane serves without CRDs of ours.
var builtin = []string{"", "apps", "batch"}

// object is one Kubernetes object of a manifest (List items unfolded), as the API server
// would receive it from kubectl create.
type object struct {
	where string // file:line
	u     *unstructured.Unstructured
}

// objects reads the built-in objects of a manifest, moved to namespace ns, without what
// the server sets itself (a kubectl get -o yaml dump carries it).
func objects(t *testing.T, file, ns string) []object {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	docs, errs := load.Documents(file, data)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var out []object
	var add func(v any, line int)
	add = func(v any, line int) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		u := &unstructured.Unstructured{Object: m}
		if strings.HasSuffix(u.GetKind(), "List") {
			items, _ := m["items"].([]any)
			for _, it := range items {
				add(it, line)
			}
			return
		}
		if !slices.Contains(builtin, u.GroupVersionKind().Group) {
			return
		}
		u.SetNamespace(ns)
		for _, f := range []string{"resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "ownerReferences"} {
			unstructured.RemoveNestedField(m, "metadata", f)
		}
		delete(m, "status")
		if u.GetKind() == "Service" { // addresses of the cluster it was dumped from
			unstructured.RemoveNestedField(m, "spec", "clusterIP")
			unstructured.RemoveNestedField(m, "spec", "clusterIPs")
		}
		out = append(out, object{where: fmt.Sprintf("%s:%d", filepath.Base(file), line), u: u})
	}
	for _, d := range docs {
		v, errs := load.Generic(file, d.Node)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		add(v, d.Line)
	}
	return out
}

func create(ctx context.Context, c client.Client, o object) error {
	return c.Create(ctx, o.u, client.DryRunAll)
}

// TestManifestsAreValid creates every built-in object of the importer's test manifests
// (dry run): the API server accepts them all.
func TestManifestsAreValid(t *testing.T) {
	c := env.Client(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	files, err := filepath.Glob("../testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	kinds := map[string]bool{}
	for _, file := range files {
		for _, o := range objects(t, file, ns) {
			kinds[o.u.GetKind()] = true
			if err := create(ctx, c, o); err != nil {
				t.Errorf("%s: %s %s: the API server rejects it: %v", o.where, o.u.GetKind(), o.u.GetName(), err)
			}
		}
	}
	for _, k := range []string{"ReplicationController", "Deployment", "StatefulSet", "DaemonSet", "CronJob", "Pod"} {
		if !kinds[k] {
			t.Errorf("no %s among the manifests", k)
		}
	}
}

// TestErrorsAreRejected creates every object of the importer's error manifest (dry run):
// each object the importer refuses, the API server refuses too.
func TestErrorsAreRejected(t *testing.T) {
	c := env.Client(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	file := "../testdata/errors/nested.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	docs, errs := load.Documents(file, data)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if set, ierrs := kube.Import(docs); len(set.Items) != 0 || len(ierrs) == 0 {
		t.Fatalf("the importer takes %d objects and reports %v; want every object refused", len(set.Items), ierrs)
	}
	objs := objects(t, file, ns)
	if len(objs) != 2 {
		t.Fatalf("%d objects, want 2", len(objs))
	}
	for _, o := range objs {
		if err := create(ctx, c, o); err == nil {
			t.Errorf("%s: the API server accepts %s %s, which the importer refuses", o.where, o.u.GetKind(), o.u.GetName())
		}
	}
}
