// Package apicheck holds no code: its test checks the Kubernetes importer's test manifests
// against a real kube-apiserver (internal/kube/kubetest), so that what the importer is tested
// with is what a cluster accepts, and what it reports as an error a cluster rejects too. It
// is a package of its own so that the importer's other tests and fuzz workers do not each
// start a control plane.
package apicheck
