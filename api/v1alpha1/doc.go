// +groupName=strata.dev

// Package v1alpha1 holds strata's user-facing objects (apiVersion strata.dev/v1alpha1):
// Workload, Segment, Fleet and AssessmentPolicy, their defaults and their validation,
// and the documents strata prints (AssessmentReport).
//
// The package imports nothing else of strata's: every other package builds on it.
// Field names follow Kubernetes conventions; quantities are resource.Quantity;
// names are DNS labels (RFC 1123).
package v1alpha1

import "time"

// GroupVersion is the apiVersion of every strata document.
const GroupVersion = "strata.dev/v1alpha1"

// Kinds of document strata reads.
const (
	KindWorkload         = "Workload"
	KindSegment          = "Segment"
	KindFleet            = "Fleet"
	KindAssessmentPolicy = "AssessmentPolicy"
	KindAssessmentReport = "AssessmentReport"
)

// TypeMeta names the schema of a document.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is the metadata every object carries.
type ObjectMeta struct {
	// Name is a DNS label (lower case letters, digits and '-', at most 63 characters).
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`

	// Set by the daemon; ignored in documents a user applies.

	// ResourceVersion changes on every write of the object; an update that names an older one
	// is refused as a conflict.
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// Generation counts changes of the spec.
	Generation        int64      `json:"generation,omitempty"`
	UID               string     `json:"uid,omitempty"`
	CreationTimestamp *time.Time `json:"creationTimestamp,omitempty"`
}

// Well-known labels and annotations.
const (
	// LabelTenant names the tenant a workload belongs to; it is part of the default isolation class.
	LabelTenant = "strata.dev/tenant"
	// AnnotationTrust, AnnotationData and AnnotationTenancy carry traits on imported objects.
	AnnotationTrust   = "strata.dev/trust"
	AnnotationData    = "strata.dev/data"
	AnnotationTenancy = "strata.dev/tenancy"
	// AnnotationDeletionRequested marks a workload being deleted (the time of the request):
	// its instances are being stopped; then the daemon removes it.
	AnnotationDeletionRequested = "strata.dev/deletion-requested"
)
