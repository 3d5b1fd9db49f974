// Package v1alpha1 stands in for the API types.
package v1alpha1

// Kind names a document.
type Kind string
