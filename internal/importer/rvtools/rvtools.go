// Package rvtools imports VMware vSphere inventories exported by RVTools: the vInfo sheet
// saved as CSV, one row per VM.
//
// Each VM becomes one Workload with isolation auto: it has no OCI image (imageAvailable is
// false), so assessment will place it in the vm tier. Its CPUs, memory and disk become
// spec.resources, its guest OS becomes traits.os and traits.osVersion (see package
// osrelease), a powered-off VM gets zero replicas, and templates are skipped. The
// Annotation column may carry strata traits as text: strata.dev/trust=untrusted,
// strata.dev/data: regulated, strata.dev/tenancy=multi, strata.dev/tenant=shop.
//
// Columns are found by name in any order; the delimiter is ',', ';' or tab, as the header
// line uses it.
package rvtools

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"

	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/inventory"
	"strata.dev/strata/internal/osrelease"
)

// Detect reports whether data looks like an RVTools vInfo export: its header row (after an
// optional UTF-8 BOM and blank lines) has a "VM" column and at least one other known vInfo
// column.
func Detect(data []byte) bool {
	h, ok := findHeader(data)
	if !ok {
		return false
	}
	r := csv.NewReader(bytes.NewReader(h.text))
	r.Comma = h.comma
	r.LazyQuotes = true
	r.FieldsPerRecord = -1
	fields, err := r.Read()
	if err != nil {
		return false
	}
	cols := mapColumns(fields)
	if cols.index[colVM] < 0 {
		return false
	}
	for c, i := range cols.index {
		if column(c) != colVM && i >= 0 {
			return true
		}
	}
	return false
}

// Import reads a vInfo CSV. file is used in errors and Sources. It returns every VM it could
// import and an error for every row it could not; a quoting error ends the import at its line.
func Import(file string, data []byte) (inventory.Set, diag.List) {
	im := &importer{file: file, names: newNames(), oses: map[string]osrelease.Release{}}
	im.run(data)
	im.errs.Sort()
	return im.set, im.errs
}

// importer holds the state of one Import.
type importer struct {
	file  string
	set   inventory.Set
	errs  diag.List
	names *names
	// oses caches osrelease.Parse: an inventory repeats a few OS names many times.
	oses map[string]osrelease.Release

	h    header
	cols columns
	r    *csv.Reader
}

func (im *importer) run(data []byte) {
	h, ok := findHeader(data)
	if !ok {
		im.errs = append(im.errs, diag.Errorf(im.file, 1, 0, "", "the file has no header row").
			WithHint("export the vInfo sheet of RVTools as CSV; its first row names the columns: VM, Powerstate, CPUs, Memory, ..."))
		return
	}
	im.h = h
	im.r = csv.NewReader(bytes.NewReader(h.rest))
	im.r.Comma = h.comma
	im.r.ReuseRecord = true
	fields, err := im.r.Read()
	if err != nil {
		im.readError(err, 0)
		return
	}
	im.cols = mapColumns(fields)
	if im.cols.index[colVM] < 0 {
		im.errs = append(im.errs, diag.Errorf(im.file, h.line, 1, "", "the header row has no VM column; it has %s", quoteList(im.cols.names)).
			WithHint("export the vInfo sheet of RVTools, whose first column is VM, and keep its header row"))
		return
	}
	// One item per line at most: growing a slice of large items costs more than reading
	// the rows. Bounded, since a line can be a blank one.
	im.set.Items = make([]inventory.Item, 0, min(bytes.Count(h.rest, []byte("\n")), 1<<16))
	for {
		rec, err := im.r.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			// With csv.ErrFieldCount, rec is the row anyway.
			if !im.readError(err, len(rec)) {
				return
			}
			continue
		}
		im.row(rec)
	}
}

// readError reports an error of the CSV reader and says whether reading can go on: it can
// after a row with the wrong number of fields, not after a quoting error.
func (im *importer) readError(err error, fields int) bool {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		im.errs = append(im.errs, diag.Errorf(im.file, im.h.line, 0, "", "read CSV: %v", err))
		return false
	}
	if errors.Is(pe.Err, csv.ErrFieldCount) {
		line := im.h.absLine(pe.StartLine)
		im.errs = append(im.errs, diag.Errorf(im.file, line, 1, "", "the row has %d fields but the header row has %d; the row is skipped", fields, len(im.cols.names)).
			WithHint("quote values that contain %s, and keep every row as wide as the header", delimName(im.h.comma)))
		return true
	}
	line, col := im.h.abs(pe.Line, pe.Column)
	im.errs = append(im.errs, diag.Errorf(im.file, line, col, "", "CSV syntax: %v; the rest of the file is not read", pe.Err).
		WithHint("enclose values that contain quotes, %s or line breaks in double quotes, and double the quotes inside them", delimName(im.h.comma)))
	return false
}
