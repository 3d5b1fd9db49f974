package kubetest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"strata.dev/strata/internal/kube/kubetest"
)

var env kubetest.Env

func TestMain(m *testing.M) { os.Exit(env.Main(m)) }

// fieldOwner is the server-side apply manager the tests apply as.
const fieldOwner = client.FieldOwner("strata-kubetest")

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestControlPlane(t *testing.T) {
	c := env.Client(t)
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != kubetest.Version {
		t.Errorf("API server is %s, want %s", v.GitVersion, kubetest.Version)
	}
	var list apiextensionsv1.CustomResourceDefinitionList
	if err := c.List(ctx(t), &list); err != nil {
		t.Fatal(err)
	}
	established := map[string]bool{}
	for _, crd := range list.Items {
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				established[crd.Name] = true
			}
		}
	}
	for _, name := range []string{"workloads.strata.dev", "segments.strata.dev", "virtualmachines.kubevirt.io", "virtualmachineinstances.kubevirt.io"} {
		if !established[name] {
			t.Errorf("CRD %s is not established (have %v)", name, established)
		}
	}
	t.Logf("Kubernetes %s; control plane and CRDs up in %s", v.GitVersion, env.Started.Round(time.Millisecond))
}

func TestNamespace(t *testing.T) {
	c := env.Client(t)
	a, b := env.Namespace(t), env.Namespace(t)
	if a == b {
		t.Fatalf("two namespaces named %s", a)
	}
	if !strings.HasPrefix(a, "testnamespace-") {
		t.Errorf("namespace %s is not named after the test", a)
	}
	var ns corev1.Namespace
	if err := c.Get(ctx(t), client.ObjectKey{Name: a}, &ns); err != nil {
		t.Fatal(err)
	}
}

// testVM is a small valid VirtualMachine, as strata renders one: a
// container disk, a CPU and memory, halted.
func testVM(ns string) *kubevirtv1.VirtualMachine {
	halted := kubevirtv1.RunStrategyHalted
	return &kubevirtv1.VirtualMachine{
		TypeMeta:   metav1.TypeMeta{APIVersion: kubevirtv1.SchemeGroupVersion.String(), Kind: "VirtualMachine"},
		ObjectMeta: metav1.ObjectMeta{Name: "ledger-0", Namespace: ns, Labels: map[string]string{"strata.dev/workload": "ledger"}},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: &halted,
			Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"strata.dev/workload": "ledger"}},
				Spec: kubevirtv1.VirtualMachineInstanceSpec{
					Domain: kubevirtv1.DomainSpec{
						CPU: &kubevirtv1.CPU{Cores: 1},
						Resources: kubevirtv1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("192Mi")},
						},
						Devices: kubevirtv1.Devices{
							Disks: []kubevirtv1.Disk{{
								Name:       "root",
								DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: kubevirtv1.DiskBusVirtio}},
							}},
						},
					},
					Volumes: []kubevirtv1.Volume{{
						Name: "root",
						VolumeSource: kubevirtv1.VolumeSource{
							ContainerDisk: &kubevirtv1.ContainerDiskSource{Image: "localhost/busybox:1"},
						},
					}},
				},
			},
		},
	}
}

// toUnstructured turns a typed object into the map its JSON encodes. (The
// runtime's converter keeps Go's unsigned integers, which unstructured
// objects cannot copy.)
func toUnstructured(t *testing.T, obj runtime.Object) *unstructured.Unstructured {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	return u
}

// applyTyped applies a typed object with server-side apply, the way strata
// applies what it renders.
func applyTyped(t *testing.T, c client.Client, obj runtime.Object) error {
	t.Helper()
	return c.Apply(ctx(t), client.ApplyConfigurationFromUnstructured(toUnstructured(t, obj)), fieldOwner, client.ForceOwnership)
}

func TestVirtualMachineAccepted(t *testing.T) {
	c, ns := env.Client(t), env.Namespace(t)
	if err := applyTyped(t, c, testVM(ns)); err != nil {
		t.Fatalf("apply a valid VirtualMachine: %v", err)
	}
	var got kubevirtv1.VirtualMachine
	if err := c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: "ledger-0"}, &got); err != nil {
		t.Fatal(err)
	}
	if rs := got.Spec.RunStrategy; rs == nil || *rs != kubevirtv1.RunStrategyHalted {
		t.Errorf("runStrategy %v, want Halted", rs)
	}
	if got.Spec.Template.Spec.Domain.CPU.Cores != 1 {
		t.Errorf("cores %d, want 1", got.Spec.Template.Spec.Domain.CPU.Cores)
	}
	// Applying the same object again changes nothing.
	if err := applyTyped(t, c, testVM(ns)); err != nil {
		t.Fatalf("apply again: %v", err)
	}
	var again kubevirtv1.VirtualMachine
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(&got), &again); err != nil {
		t.Fatal(err)
	}
	if again.Generation != got.Generation {
		t.Errorf("re-applying bumped the generation from %d to %d", got.Generation, again.Generation)
	}
}

// unstructuredVM is testVM as a map, for setting fields the Go type cannot
// hold.
func unstructuredVM(t *testing.T, ns string) *unstructured.Unstructured {
	t.Helper()
	return toUnstructured(t, testVM(ns))
}

func TestVirtualMachineRejected(t *testing.T) {
	c, ns := env.Client(t), env.Namespace(t)
	tests := []struct {
		name  string
		path  []string // the field to set, under the object
		value any
	}{
		{"run strategy is a string", []string{"spec", "runStrategy"}, int64(5)},
		{"cores is an integer", []string{"spec", "template", "spec", "domain", "cpu", "cores"}, "x"},
		{"disks are a list", []string{"spec", "template", "spec", "domain", "devices", "disks"}, "root"},
		{"memory is a quantity", []string{"spec", "template", "spec", "domain", "resources", "requests", "memory"}, "lots"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := unstructuredVM(t, ns)
			u.SetName("bad")
			if err := unstructured.SetNestedField(u.Object, tt.value, tt.path...); err != nil {
				t.Fatal(err)
			}
			expectRejected(t, c, u, tt.path)
		})
	}
}

// expectRejected checks that the API server refuses u, whose field at path
// is invalid, both on create and on server-side apply, and that each error
// names the field.
//
// The two paths report a field of the wrong JSON type differently: a create
// fails validation (422 Invalid, "spec.x: Invalid value"), while an apply
// fails already when the server converts the patch to the schema's types,
// with a 500 and the message "failed to create typed patch object (...):
// .spec.x: expected ...". Code that applies must not take that 500 for a
// passing server fault. A value of the right type that breaks the schema
// otherwise (a quantity's pattern) fails validation on both paths.
func expectRejected(t *testing.T, c client.Client, u *unstructured.Unstructured, path []string) {
	t.Helper()
	field := strings.Join(path, ".")
	err := c.Create(ctx(t), u.DeepCopy())
	if !apierrors.IsInvalid(err) {
		t.Errorf("create: got %v, want 422 Invalid", err)
	} else if !strings.Contains(err.Error(), field) {
		t.Errorf("create: error %q does not name %s", err, field)
	}
	err = c.Apply(ctx(t), client.ApplyConfigurationFromUnstructured(u.DeepCopy()), fieldOwner)
	switch {
	case apierrors.IsInvalid(err):
		if !strings.Contains(err.Error(), field) {
			t.Errorf("apply: error %q does not name %s", err, field)
		}
	case err == nil || !strings.Contains(err.Error(), "failed to create typed patch object"):
		t.Errorf("apply: got %v, want 422 Invalid or the patch refused against the schema", err)
	case !strings.Contains(err.Error(), "."+field):
		t.Errorf("apply: error %q does not name .%s", err, field)
	}
}

func TestVirtualMachineUnknownField(t *testing.T) {
	c, ns := env.Client(t), env.Namespace(t)
	path := []string{"spec", "template", "spec", "domain", "cpuCount"}

	u := unstructuredVM(t, ns)
	u.SetName("strict")
	if err := unstructured.SetNestedField(u.Object, int64(2), path...); err != nil {
		t.Fatal(err)
	}
	err := c.Create(ctx(t), u, client.FieldValidation(metav1.FieldValidationStrict))
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "cpuCount") {
		t.Fatalf("strict create with an unknown field: got %v, want a BadRequest naming cpuCount", err)
	}

	// Without strict validation the API server drops the field.
	u = unstructuredVM(t, ns)
	u.SetName("pruned")
	if err := unstructured.SetNestedField(u.Object, int64(2), path...); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx(t), u, client.FieldValidation(metav1.FieldValidationIgnore)); err != nil {
		t.Fatal(err)
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(u.GroupVersionKind())
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(u), got); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(got.Object, path...); found {
		t.Errorf("the API server kept the unknown field %s", strings.Join(path, "."))
	}

	// Server-side apply refuses an undeclared field whatever the field
	// validation: the patch cannot be typed against the schema.
	u = unstructuredVM(t, ns)
	u.SetName("applied")
	if err := unstructured.SetNestedField(u.Object, int64(2), path...); err != nil {
		t.Fatal(err)
	}
	err = c.Apply(ctx(t), client.ApplyConfigurationFromUnstructured(u), fieldOwner, client.ForceOwnership)
	if err == nil || !strings.Contains(err.Error(), "cpuCount: field not declared in schema") {
		t.Errorf("apply with an unknown field: got %v, want it refused as not declared in the schema", err)
	}
}

var workloadGVK = schema.GroupVersionKind{Group: "strata.dev", Version: "v1alpha1", Kind: "Workload"}

// readDocs reads the YAML documents of a file as unstructured objects.
func readDocs(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// TestStrataExample applies every Workload and Segment of the hybrid
// example, in a namespace, with server-side apply.
func TestStrataExample(t *testing.T) {
	c, ns := env.Client(t), env.Namespace(t)
	docs := readDocs(t, "../../../examples/hybrid/app.yaml")
	kinds := map[string]int{}
	for _, u := range docs {
		u.SetNamespace(ns)
		if err := c.Apply(ctx(t), client.ApplyConfigurationFromUnstructured(u), fieldOwner); err != nil {
			t.Errorf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		kinds[u.GetKind()]++
	}
	if kinds["Workload"] == 0 || kinds["Segment"] == 0 {
		t.Fatalf("the example holds %v; want Workloads and Segments", kinds)
	}
	var list unstructured.UnstructuredList
	list.SetGroupVersionKind(workloadGVK.GroupVersion().WithKind("WorkloadList"))
	if err := c.List(ctx(t), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != kinds["Workload"] {
		t.Errorf("listed %d workloads, applied %d", len(list.Items), kinds["Workload"])
	}
	for _, w := range list.Items {
		if w.GetName() != "storefront" {
			continue
		}
		if cpu, _, _ := unstructured.NestedString(w.Object, "spec", "resources", "cpu"); cpu != "250m" {
			t.Errorf("storefront's cpu is %q, want 250m", cpu)
		}
	}
}

func TestWorkloadRejected(t *testing.T) {
	c, ns := env.Client(t), env.Namespace(t)
	tests := []struct {
		name  string
		path  []string
		value any
	}{
		{"replicas is an integer", []string{"spec", "replicas"}, "two"},
		{"cpu is a quantity", []string{"spec", "resources", "cpu"}, "fast"},
		{"command is a list", []string{"spec", "command"}, "sh -c true"},
		{"privileged is a boolean", []string{"spec", "traits", "privileged"}, "yes"},
		{"a port is an integer", []string{"spec", "health", "tcp", "port"}, "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: map[string]any{
				"spec": map[string]any{"image": "localhost/busybox:1"},
			}}
			u.SetGroupVersionKind(workloadGVK)
			u.SetNamespace(ns)
			u.SetName("bad")
			if err := unstructured.SetNestedField(u.Object, tt.value, tt.path...); err != nil {
				t.Fatal(err)
			}
			expectRejected(t, c, u, tt.path)
		})
	}
}

// TestWorkloadStatus checks the status subresource: an apply of the object
// leaves the status alone; the status is written through its subresource,
// as strata's controller writes it.
func TestWorkloadStatus(t *testing.T) {
	c, ns := env.Client(t), env.Namespace(t)
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec":   map[string]any{"image": "localhost/busybox:1"},
		"status": map[string]any{"phase": "Running"},
	}}
	u.SetGroupVersionKind(workloadGVK)
	u.SetNamespace(ns)
	u.SetName("web")
	if err := c.Apply(ctx(t), client.ApplyConfigurationFromUnstructured(u.DeepCopy()), fieldOwner); err != nil {
		t.Fatal(err)
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(workloadGVK)
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(u), got); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedMap(got.Object, "status"); found {
		t.Errorf("applying the object set its status: %v", got.Object["status"])
	}

	status := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"phase": "Running", "tier": "container"}}}
	status.SetGroupVersionKind(workloadGVK)
	status.SetNamespace(ns)
	status.SetName("web")
	if err := c.Status().Apply(ctx(t), client.ApplyConfigurationFromUnstructured(status), fieldOwner); err != nil {
		t.Fatalf("apply the status: %v", err)
	}
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(u), got); err != nil {
		t.Fatal(err)
	}
	if phase, _, _ := unstructured.NestedString(got.Object, "status", "phase"); phase != "Running" {
		t.Errorf("status.phase %q after writing the status, want Running", phase)
	}
}
