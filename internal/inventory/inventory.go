// Package inventory is what importers produce: workloads found in users' files (strata
// documents, Kubernetes manifests, compose files, VMware inventories), each with its source.
package inventory

import (
	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
)

// Item is one workload and where it came from. The workload is defaulted and valid.
type Item struct {
	Workload v1alpha1.Workload
	Source   v1alpha1.Source
	// Notes say what of the source did not carry over into the workload (a compose build:
	// without an image, an initContainer, a VMware snapshot), or what the user should know
	// about how it did. An importer never drops a part of its input without a note.
	Notes []Note
}

// Note is one remark about an imported item, placed in its source.
type Note struct {
	// Line is the line in Source.File the note is about; 0 means the item's own line.
	Line int
	// Path is the source's own field path (services.web.build,
	// spec.template.spec.initContainers[0]); empty for the whole item.
	Path string
	// Message is a sentence: what did not carry over or what to know, and what to do.
	Message string
}

// Set is everything found in some inputs.
type Set struct {
	Items []Item
	// Skipped lists input objects that describe no workload, with the reason.
	Skipped []v1alpha1.SkippedObject
	// Warnings are problems that did not stop an item from being imported (a compose
	// variable left unset in a field that does not matter for isolation, say).
	Warnings diag.List
}

// Add appends another set's items, skipped objects and warnings to s.
func (s *Set) Add(o Set) {
	s.Items = append(s.Items, o.Items...)
	s.Skipped = append(s.Skipped, o.Skipped...)
	s.Warnings = append(s.Warnings, o.Warnings...)
}
