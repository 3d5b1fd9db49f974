// Package inventory is what importers produce: workloads found in users' files (strata
// documents, Kubernetes manifests, compose files, VMware inventories), each with its source.
package inventory

import "strata.dev/strata/api/v1alpha1"

// Item is one workload and where it came from. The workload is defaulted and valid.
type Item struct {
	Workload v1alpha1.Workload
	Source   v1alpha1.Source
}

// Set is everything found in some inputs.
type Set struct {
	Items []Item
	// Skipped lists input objects that describe no workload, with the reason.
	Skipped []v1alpha1.SkippedObject
}

// Add appends another set's items and skipped objects to s.
func (s *Set) Add(o Set) {
	s.Items = append(s.Items, o.Items...)
	s.Skipped = append(s.Skipped, o.Skipped...)
}
