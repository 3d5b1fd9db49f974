package crd

import (
	"encoding/json"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"strata.dev/strata/api/v1alpha1"
)

// TestCopyAndConvert: DeepCopyObject shares nothing with the original, and a document goes
// to a resource and back unchanged (but for what only the cluster sets).
func TestCopyAndConvert(t *testing.T) {
	disk := resource.MustParse("2Gi")
	doc := &v1alpha1.Workload{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindWorkload},
		Metadata: v1alpha1.ObjectMeta{Name: "web", Labels: map[string]string{"team": "a"}},
		Spec: v1alpha1.WorkloadSpec{Image: "registry.example/web:1", Env: map[string]string{"A": "1"},
			Resources: v1alpha1.Resources{CPU: resource.MustParse("500m"), Disk: &disk}},
	}
	w := FromDocument(doc, "shop")
	w.UID = "u-1"
	w.Finalizers = []string{"strata.dev/operator"}
	c := w.DeepCopyObject().(*Workload)
	if !reflect.DeepEqual(c, w) {
		t.Fatalf("copy differs:\n%+v\n%+v", c, w)
	}
	c.Spec.Env["A"] = "2"
	c.Labels["team"] = "b"
	if w.Spec.Env["A"] != "1" || w.Labels["team"] != "a" {
		t.Error("the copy shares maps with the original")
	}
	back := w.Document()
	if back.Metadata.UID != "u-1" || back.Metadata.Name != "web" || back.Spec.Image != doc.Spec.Image ||
		back.Spec.Resources.Disk.String() != "2Gi" || back.Kind != v1alpha1.KindWorkload {
		t.Errorf("document %+v", back)
	}
	back.Metadata.UID = ""
	got, _ := json.Marshal(back)
	want, _ := json.Marshal(doc)
	if string(got) != string(want) {
		t.Errorf("round trip:\n%s\n%s", got, want)
	}
}

// TestScheme: the scheme knows both kinds and their lists under strata.dev/v1alpha1.
func TestScheme(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []runtime.Object{&Workload{}, &WorkloadList{}, &Segment{}, &SegmentList{}} {
		gvks, _, err := s.ObjectKinds(obj)
		if err != nil || len(gvks) != 1 || gvks[0].GroupVersion() != GroupVersion {
			t.Errorf("%T: %v %v", obj, gvks, err)
		}
	}
	seg := SegmentFromDocument(&v1alpha1.Segment{Metadata: v1alpha1.ObjectMeta{Name: "front"},
		Spec: v1alpha1.SegmentSpec{Egress: v1alpha1.EgressDeny}}, "shop")
	seg.CreationTimestamp = metav1.Now()
	if d := seg.Document(); d.Metadata.CreationTimestamp == nil || d.Spec.Egress != v1alpha1.EgressDeny {
		t.Errorf("segment document %+v", d)
	}
}
