// Package crd makes strata's Workload and Segment (api/v1alpha1) usable as Kubernetes custom
// resources: Go objects that controller-runtime's clients, caches and schemes accept.
//
// # Terms
//
//   - Document: a Workload or Segment of api/v1alpha1, as strata reads it from a file and as
//     the daemon stores it. Its metadata is strata's own ObjectMeta, a subset of Kubernetes'.
//   - Resource: the same object stored by a Kubernetes API server under the CRDs of
//     deploy/crds. Its metadata is Kubernetes' full metav1.ObjectMeta (UID, finalizers,
//     owner references, deletion timestamp) and its spec and status are the document's.
//
// api/v1alpha1 imports nothing of Kubernetes' machinery and stays that way: its types have no
// DeepCopy methods and no runtime.Object implementation. The types here wrap its spec and
// status in Kubernetes' metadata, copy themselves through JSON (the spec has no pointers into
// shared state, and a reconcile copies a handful of objects, so the cost does not matter),
// and convert to and from documents with Document and FromDocument.
package crd

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"strata.dev/strata/api/v1alpha1"
)

// GroupVersion is strata.dev/v1alpha1, the group and version of strata's resources.
var GroupVersion = schema.GroupVersion{Group: "strata.dev", Version: "v1alpha1"}

// Resources, as the API server serves them.
const (
	ResourceWorkloads = "workloads"
	ResourceSegments  = "segments"
)

// AddToScheme registers Workload, Segment and their lists in s.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Workload{}, &WorkloadList{}, &Segment{}, &SegmentList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Workload is a strata.dev/v1alpha1 Workload resource.
type Workload struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              v1alpha1.WorkloadSpec    `json:"spec"`
	Status            *v1alpha1.WorkloadStatus `json:"status,omitempty"`
}

// WorkloadList is a list of Workload resources.
type WorkloadList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Workload `json:"items"`
}

// Segment is a strata.dev/v1alpha1 Segment resource.
type Segment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              v1alpha1.SegmentSpec    `json:"spec"`
	Status            *v1alpha1.SegmentStatus `json:"status,omitempty"`
}

// SegmentList is a list of Segment resources.
type SegmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Segment `json:"items"`
}

// DeepCopyObject implements runtime.Object.
func (w *Workload) DeepCopyObject() runtime.Object { return jsonCopy(w) }

// DeepCopyObject implements runtime.Object.
func (l *WorkloadList) DeepCopyObject() runtime.Object { return jsonCopy(l) }

// DeepCopyObject implements runtime.Object.
func (s *Segment) DeepCopyObject() runtime.Object { return jsonCopy(s) }

// DeepCopyObject implements runtime.Object.
func (l *SegmentList) DeepCopyObject() runtime.Object { return jsonCopy(l) }

// jsonCopy copies v through its JSON form. Every field of these types survives the round trip
// (they are what the API server stores), so the copy is deep and equal.
func jsonCopy[T any](v *T) *T {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("crd: copy %T: %v", v, err)) // cannot happen: the types are plain JSON
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("crd: copy %T: %v", v, err))
	}
	return out
}

// Document returns w as a strata document, sharing nothing with w.
func (w *Workload) Document() v1alpha1.Workload {
	c := jsonCopy(w)
	return v1alpha1.Workload{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindWorkload},
		Metadata: documentMeta(c.ObjectMeta),
		Spec:     c.Spec,
		Status:   c.Status,
	}
}

// Document returns s as a strata document, sharing nothing with s.
func (s *Segment) Document() v1alpha1.Segment {
	c := jsonCopy(s)
	return v1alpha1.Segment{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindSegment},
		Metadata: documentMeta(c.ObjectMeta),
		Spec:     c.Spec,
		Status:   c.Status,
	}
}

// documentMeta is the part of Kubernetes' metadata that strata's documents carry.
func documentMeta(m metav1.ObjectMeta) v1alpha1.ObjectMeta {
	out := v1alpha1.ObjectMeta{
		Name: m.Name, Labels: m.Labels, Annotations: m.Annotations,
		ResourceVersion: m.ResourceVersion, Generation: m.Generation, UID: string(m.UID),
	}
	if !m.CreationTimestamp.IsZero() {
		t := m.CreationTimestamp.Time
		out.CreationTimestamp = &t
	}
	return out
}

// FromDocument returns the resource of a Workload document in namespace ns: its name, labels,
// annotations and spec (not its status, which the cluster's operator writes).
func FromDocument(w *v1alpha1.Workload, ns string) *Workload {
	c := jsonCopy(w)
	return &Workload{
		TypeMeta: metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: v1alpha1.KindWorkload},
		ObjectMeta: metav1.ObjectMeta{
			Name: c.Metadata.Name, Namespace: ns, Labels: c.Metadata.Labels, Annotations: c.Metadata.Annotations,
		},
		Spec: c.Spec,
	}
}

// SegmentFromDocument returns the resource of a Segment document in namespace ns.
func SegmentFromDocument(s *v1alpha1.Segment, ns string) *Segment {
	c := jsonCopy(s)
	return &Segment{
		TypeMeta: metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: v1alpha1.KindSegment},
		ObjectMeta: metav1.ObjectMeta{
			Name: c.Metadata.Name, Namespace: ns, Labels: c.Metadata.Labels, Annotations: c.Metadata.Annotations,
		},
		Spec: c.Spec,
	}
}
