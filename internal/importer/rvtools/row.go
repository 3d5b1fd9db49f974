package rvtools

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/inventory"
)

// Annotations the importer puts on workloads, from the columns of the same names.
const (
	AnnotationSourceCluster    = "strata.dev/source-cluster"
	AnnotationSourceHost       = "strata.dev/source-host"
	AnnotationSourceDatacenter = "strata.dev/source-datacenter"
	AnnotationSourceIP         = "strata.dev/source-ip"
	AnnotationPowerstate       = "strata.dev/powerstate"
)

// SourceKind is Source.Kind of every imported item.
const SourceKind = "VM"

// row is one data row being turned into a workload.
type row struct {
	im    *importer
	rec   []string
	line  int
	errs  diag.List
	notes []inventory.Note
}

// row imports one record, or reports why it cannot.
func (im *importer) row(rec []string) {
	if blank(rec) {
		return // spreadsheets often end with empty rows
	}
	line, _ := im.r.FieldPos(0)
	r := &row{im: im, rec: rec, line: im.h.absLine(line)}
	vm := r.cell(colVM)
	src := v1alpha1.Source{File: im.file, Line: r.line, Format: v1alpha1.FormatRVTools, Kind: SourceKind}

	if r.template() {
		src.Name = vm
		im.set.Skipped = append(im.set.Skipped, v1alpha1.SkippedObject{
			Source: src, Reason: "a VM template: templates do not run; deploy a VM from it to import that VM"})
		return
	}
	var w v1alpha1.Workload
	if vm == "" {
		r.fail(colVM, "the VM name is empty", "give every VM a name")
	} else {
		w.Metadata.Name = im.names.claim(vm, r.line)
	}
	r.replicas(&w)
	r.resources(&w)
	r.os(&w)
	r.annotations(&w)
	r.traits(&w)
	r.vm(&w, vm)
	if len(r.errs) > 0 {
		im.errs = append(im.errs, r.errs...)
		return
	}
	no := false
	w.Spec.Traits.ImageAvailable = &no
	w.SetDefaults()
	// Every value was checked above; this catches what those checks might miss.
	if errs := v1alpha1.ValidateWorkload(&w); len(errs) > 0 {
		for _, e := range errs {
			im.errs = append(im.errs, diag.Errorf(im.file, r.line, 0, e.Field, "%s", e.ErrorBody()))
		}
		return
	}
	if w.Metadata.Name != vm {
		src.Name = vm
	}
	im.set.Items = append(im.set.Items, inventory.Item{Workload: w, Source: src, Notes: r.notes})
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// cell returns the trimmed value of column c, or "" when the file has no such column.
func (r *row) cell(c column) string {
	i := r.im.cols.index[c]
	if i < 0 || i >= len(r.rec) {
		return ""
	}
	return strings.TrimSpace(r.rec[i])
}

// fail reports a problem with the value of column c.
func (r *row) fail(c column, msg, hint string) {
	i := r.im.cols.index[c]
	line, col := r.line, 0
	if i >= 0 && i < len(r.rec) {
		line, col = r.im.r.FieldPos(i)
		line, col = r.im.h.abs(line, col)
	}
	path := ""
	if i >= 0 {
		path = r.im.cols.names[i]
	}
	r.errs = append(r.errs, &diag.Error{File: r.im.file, Line: line, Col: col, Path: path, Msg: msg, Hint: hint})
}

// template reports whether the row is a VM template.
func (r *row) template() bool {
	v := r.cell(colTemplate)
	if v == "" {
		return false
	}
	switch strings.ToLower(v) {
	case "true", "yes", "1":
		return true
	case "false", "no", "0":
		return false
	}
	r.fail(colTemplate, fmt.Sprintf("%q is not True or False", v), "RVTools writes True for a template and False for a VM")
	return false
}

// replicas runs a powered-on or suspended VM once; a powered-off VM exists but does not run.
func (r *row) replicas(w *v1alpha1.Workload) {
	v := r.cell(colPowerstate)
	var n int32
	switch strings.ToLower(v) {
	case "":
		return
	case "poweredon", "suspended":
		n = 1
	case "poweredoff":
		n = 0
	default:
		r.fail(colPowerstate, fmt.Sprintf("%q is not a power state", v), "use poweredOn, poweredOff or suspended")
		return
	}
	w.Spec.Replicas = &n
}

// resources reads CPUs, Memory (MiB) and the disk size (MiB). Empty cells keep the defaults.
func (r *row) resources(w *v1alpha1.Workload) {
	res := &w.Spec.Resources
	if n, ok := r.count(colCPUs, "CPUs", 1, false); ok {
		res.CPU = *resource.NewQuantity(n, resource.DecimalSI)
	}
	if n, ok := r.count(colMemory, "MiB of memory", 1, true); ok {
		res.Memory = *resource.NewQuantity(n<<20, resource.BinarySI)
	}
	for _, c := range []column{colProvisioned, colTotalDisk, colInUse} {
		if r.cell(c) == "" {
			continue
		}
		if n, ok := r.count(c, "MiB of disk", 0, true); ok && n > 0 {
			d := resource.NewQuantity(n<<20, resource.BinarySI)
			res.Disk = d
		}
		break
	}
}

// maxMiB keeps MiB values within what a quantity in bytes can hold.
const maxMiB = 1<<(63-20) - 1

// count reads a whole number of at least least from column c. what names the unit in
// messages. fraction allows decimals, which are rounded up. It reports false when the cell
// is empty or wrong; a wrong one is reported.
func (r *row) count(c column, what string, least int64, fraction bool) (int64, bool) {
	v := r.cell(c)
	if v == "" {
		return 0, false
	}
	limit := int64(maxMiB)
	if c == colCPUs {
		limit = maxCPUs
	}
	n, err := parseNumber(v, fraction)
	switch {
	case errors.Is(err, errRange) || err == nil && n > limit:
		r.fail(c, fmt.Sprintf("%q is too large", v), fmt.Sprintf("give at most %d %s", limit, what))
	case err != nil:
		r.fail(c, fmt.Sprintf("%q is %v", v, err), fmt.Sprintf("give a whole number of %s such as 4", what))
	case n < 0:
		r.fail(c, fmt.Sprintf("%q is negative", v), fmt.Sprintf("give a number of %s of at least %d", what, least))
	case n < least:
		r.fail(c, fmt.Sprintf("%q is too small", v), fmt.Sprintf("give a number of %s of at least %d", what, least))
	default:
		return n, true
	}
	return 0, false
}

// maxCPUs is far above what any vSphere VM has, and small enough for every use of the count.
const maxCPUs = 1 << 20
