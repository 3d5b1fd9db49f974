package kube

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/inventory"
	"strata.dev/strata/internal/load"
)

// Import converts the workload objects among docs into workloads: Pods, Deployments,
// StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and CronJobs, at any
// apiVersion Kubernetes serves them at, any other object with a pod template at
// spec.template.spec, and the items of List documents (kind List, or a typed list such as
// PodList). Other kinds go to Set.Skipped with the reason. strata's own documents are left
// alone. It returns every workload it could import, in input order, and every problem found;
// an object with a problem is not imported, the others are.
func Import(docs []load.Document) (inventory.Set, diag.List) {
	var imp Importer
	for _, doc := range docs {
		imp.Add(doc)
	}
	return imp.Finish()
}

// Importer imports documents one at a time, as Import does all at once. It keeps what it
// made of each document, never the document itself, so a caller that reads a stream can
// let each document go once it is added.
type Importer struct {
	entries []entry // in input order
	errs    diag.List
}

// Add imports one document; strata's own documents are left alone.
func (imp *Importer) Add(doc load.Document) {
	if load.IsStrata(doc) {
		return
	}
	imp.object(&object{doc: doc}, 0)
}

// Finish names the workloads and returns them with the skipped objects and every problem
// found, sorted by position. The Importer is empty afterwards.
func (imp *Importer) Finish() (inventory.Set, diag.List) {
	imp.errs.Sort()
	set, errs := imp.finish(), imp.errs
	*imp = Importer{}
	return set, errs
}

// maxListDepth bounds Lists nested in Lists; Kubernetes itself never nests them.
const maxListDepth = 4

// maxValues bounds the values a List may expand to, aliases counted, as package load bounds
// one document: items that alias one large value must not multiply the work.
const maxValues = load.MaxNodes

// entry is an imported workload waiting for its final name, or a skipped object.
type entry struct {
	found   *found
	skipped *v1alpha1.SkippedObject
}

// found is an imported workload and what naming it needs: the object's own metadata only,
// not the document it came from.
type found struct {
	file      string
	line      int
	kind      string
	name      string
	namespace string
	owner     *metav1.OwnerReference // the object's controller, if any
	workload  *v1alpha1.Workload
	notes     []inventory.Note
}

// objectKey identifies an object among the inputs.
type objectKey struct{ kind, namespace, name string }

// finish names the workloads, in input order, and lists them with the skipped objects. An
// object run by a controller that is among the inputs too (the Pods of a ReplicaSet, the
// ReplicaSets of a Deployment, the Jobs of a CronJob, as `kubectl get all` lists them) is
// skipped: its controller is the workload.
func (imp *Importer) finish() inventory.Set {
	present := map[objectKey]bool{}
	for _, e := range imp.entries {
		if f := e.found; f != nil {
			present[objectKey{f.kind, f.namespace, f.name}] = true
		}
	}
	var set inventory.Set
	names := newNamer()
	for i, e := range imp.entries {
		imp.entries[i] = entry{} // the set holds it from here on
		if e.skipped != nil {
			set.Skipped = append(set.Skipped, *e.skipped)
			continue
		}
		f := e.found
		src := v1alpha1.Source{File: f.file, Line: f.line, Format: v1alpha1.FormatKubernetes, Kind: f.kind}
		if f.namespace != "" {
			src.Name = f.namespace + "/" + f.name
		}
		if owner := f.owner; owner != nil && present[objectKey{owner.Kind, f.namespace, owner.Name}] {
			if src.Name == "" {
				src.Name = f.name
			}
			set.Skipped = append(set.Skipped, v1alpha1.SkippedObject{Source: src,
				Reason: fmt.Sprintf("%s is run by %s %s, which is among the inputs", f.kind, owner.Kind, owner.Name)})
			continue
		}
		w := f.workload
		w.Metadata.Name = names.name(w.Metadata.Name, f.namespace)
		if src.Name == "" && w.Metadata.Name != f.name {
			src.Name = f.name
		}
		set.Items = append(set.Items, inventory.Item{Workload: *w, Source: src, Notes: f.notes})
	}
	return set
}

// object imports one object: a list's items, a workload, or a skipped object.
func (imp *Importer) object(o *object, depth int) {
	n := resolve(o.doc.Node)
	if n == nil || n.Kind != yaml.MappingNode {
		imp.errs = append(imp.errs, o.errorf(nil, "start each object with apiVersion: and kind:",
			"a Kubernetes object must be a mapping of fields"))
		return
	}
	if o.doc.APIVersion == "" || o.doc.Kind == "" {
		imp.errs = append(imp.errs, o.errorf(nil, "give the object its apiVersion and kind, such as apiVersion: apps/v1 and kind: Deployment",
			"not a Kubernetes object: it has no apiVersion or kind"))
		return
	}
	switch {
	case isKustomization(o.doc.APIVersion):
		imp.skip(o, KustomizationReason)
	case isList(o):
		imp.list(o, depth)
	case isWorkloadKind(o.doc.APIVersion, o.doc.Kind), hasPodTemplate(o):
		imp.workload(o)
	default:
		imp.skip(o, "")
	}
}

// workload imports an object of a workload kind.
func (imp *Importer) workload(o *object) {
	if versions := served[o.doc.Kind]; isWorkloadKind(o.doc.APIVersion, o.doc.Kind) && !slices.Contains(versions, o.doc.APIVersion) {
		imp.errs = append(imp.errs, o.errorf(path{"apiVersion"}, "use apiVersion: "+versions[0],
			"Kubernetes serves %s at %s, not at %s", o.doc.Kind, strings.Join(versions, ", "), o.doc.APIVersion))
		return
	}
	p, errs := decodeWorkload(o)
	if p == nil {
		imp.errs = append(imp.errs, errs...)
		return
	}
	// Values that did not decode are left out, so the rest of the object is still read:
	// every problem of the object is reported at once, except those that only follow from
	// a value left out.
	w, notes, berrs := build(o, p)
	for _, e := range berrs {
		if !slices.ContainsFunc(errs, func(d *diag.Error) bool { return related(d.Path, e.Path) }) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		imp.errs = append(imp.errs, errs...)
		return
	}
	f := &found{file: o.doc.File, line: o.doc.Line, kind: o.doc.Kind, name: p.meta.Name, namespace: p.meta.Namespace,
		workload: w, notes: notes}
	if owner := metav1.GetControllerOf(&p.meta); owner != nil {
		f.owner = &metav1.OwnerReference{Kind: owner.Kind, Name: owner.Name}
	}
	imp.entries = append(imp.entries, entry{found: f})
}

// skip lists an object that describes no workload, for the reason given or for its kind.
func (imp *Importer) skip(o *object, reason string) {
	name := scalarAt(o.doc.Node, path{"metadata", "name"})
	if ns := scalarAt(o.doc.Node, path{"metadata", "namespace"}); ns != "" && name != "" {
		name = ns + "/" + name
	}
	switch _, ok := served[o.doc.Kind]; {
	case reason != "":
	case ok:
		reason = fmt.Sprintf("kind %s of %s describes no workload", o.doc.Kind, o.doc.APIVersion)
	default:
		reason = fmt.Sprintf("kind %s describes no workload", o.doc.Kind)
	}
	imp.entries = append(imp.entries, entry{skipped: &v1alpha1.SkippedObject{
		Source: v1alpha1.Source{File: o.doc.File, Line: o.doc.Line, Format: v1alpha1.FormatKubernetes, Kind: o.doc.Kind, Name: name},
		Reason: reason,
	}})
}

// list imports the items of a List. Items of a typed list (PodList) may leave out their
// apiVersion and kind: they are the list's, without "List".
func (imp *Importer) list(o *object, depth int) {
	if depth >= maxListDepth {
		imp.errs = append(imp.errs, o.errorf(nil, "put the objects of the inner lists in the outer list",
			"lists are nested more than %d deep", maxListDepth))
		return
	}
	items := resolve(load.Field(resolve(o.doc.Node), "items"))
	if items == nil || (items.Kind == yaml.ScalarNode && items.Tag == "!!null") {
		return
	}
	if items.Kind != yaml.SequenceNode {
		imp.errs = append(imp.errs, o.errorf(path{"items"}, "write the items as a YAML list, one per '- '",
			"the items of a %s must be a list", o.doc.Kind))
		return
	}
	if size(items, maxValues, map[*yaml.Node]int{}) > maxValues {
		imp.errs = append(imp.errs, o.errorf(path{"items"}, "write the objects out instead of repeating aliases",
			"the %s expands to more than %d values", o.doc.Kind, maxValues))
		return
	}
	itemKind, itemVersion := "", ""
	if o.doc.Kind != "List" {
		itemKind, itemVersion = strings.TrimSuffix(o.doc.Kind, "List"), o.doc.APIVersion
	}
	for i, raw := range items.Content {
		n := resolve(raw)
		item := &object{at: o.at.to("items", i), doc: load.Document{File: o.doc.File, Index: o.doc.Index, Node: n,
			Line: raw.Line, Col: raw.Column, APIVersion: itemVersion, Kind: itemKind}}
		if n != nil && n.Kind == yaml.MappingNode {
			if v := scalarAt(n, path{"apiVersion"}); v != "" {
				item.doc.APIVersion = v
			}
			if k := scalarAt(n, path{"kind"}); k != "" {
				item.doc.Kind = k
			}
		}
		if item.doc.Line < 1 {
			item.doc.Line, item.doc.Col = o.doc.Line, o.doc.Col
		}
		if load.IsStrata(item.doc) {
			imp.errs = append(imp.errs, item.errorf(path{"apiVersion"}, "put strata's objects in documents of their own",
				"a %s holds Kubernetes objects, not strata's", o.doc.Kind))
			continue
		}
		imp.object(item, depth+1)
	}
}

// size counts the values under n, aliases expanded, up to limit+1.
func size(n *yaml.Node, limit int, memo map[*yaml.Node]int) int {
	n = resolve(n)
	if n == nil {
		return 0
	}
	if s, ok := memo[n]; ok {
		return s
	}
	memo[n] = limit + 1 // a value that contains itself is too large
	total := 1
	for _, c := range n.Content {
		total += size(c, limit, memo)
		if total > limit {
			total = limit + 1
			break
		}
	}
	memo[n] = total
	return total
}

// related reports whether one of two field paths is the other or lies under it.
func related(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if !strings.HasPrefix(b, a) {
		return false
	}
	return len(b) == len(a) || a == "" || b[len(a)] == '.' || b[len(a)] == '['
}
