package rvtools

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"path/filepath"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/inventory"
	"strata.dev/strata/internal/osrelease"
)

// Detect reports whether data looks like an RVTools export: its header row (after an
// optional byte order mark and blank lines) has a "VM" column and at least one other known
// column. An Excel workbook is detected too, so that Import can say what to do with it.
func Detect(data []byte) bool {
	if isWorkbook(data) {
		return true // to say what to do with it
	}
	data, _ = utf8Text(data)
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

// Options change how an inventory is read.
type Options struct {
	// DiskDir is the local directory the datastores are copied to: a disk the inventory
	// names "[ds1] web01/web01.vmdk" is DiskDir/ds1/web01/web01.vmdk. Empty: the disk is
	// named relative to the daemon's images directory, as ds1/web01/web01.vmdk.
	DiskDir string
}

// Import reads a vInfo CSV with zero Options.
func Import(file string, data []byte) (inventory.Set, diag.List) {
	return ImportWith(file, data, Options{})
}

// ImportWith reads a vInfo CSV. file is used in errors and Sources, and to find the vDisk
// sheet exported beside it. It returns every VM it could import and an error for every
// row it could not; a quoting error ends the import at its line.
func ImportWith(file string, data []byte, opts Options) (inventory.Set, diag.List) {
	im := &importer{file: file, opts: opts, names: newNames(), oses: map[string]osrelease.Release{}}
	if opts.DiskDir != "" {
		if abs, err := filepath.Abs(opts.DiskDir); err == nil {
			im.opts.DiskDir = abs
		}
	}
	if isWorkbook(data) {
		im.errs = append(im.errs, diag.Errorf(file, 1, 1, "", "an Excel workbook: save the vInfo sheet as CSV (File > Save As > CSV UTF-8)"))
		return im.set, im.errs
	}
	data, odd := utf8Text(data)
	if odd {
		im.set.Warnings = append(im.set.Warnings, diag.Errorf(file, 0, 0, "", "the UTF-16 text ends in half a character, which is left out").
			WithHint("export the sheet again; the file may have been cut short"))
	}
	im.run(data)
	im.errs.Sort()
	return im.set, im.errs
}

// importer holds the state of one Import.
type importer struct {
	file  string
	opts  Options
	set   inventory.Set
	errs  diag.List
	names *names
	// oses caches osrelease.Parse: an inventory repeats a few OS names many times.
	oses map[string]osrelease.Release

	h    header
	cols columns
	r    *csv.Reader

	// vdisks are the disks of the vDisk sheet beside the vInfo sheet, by VM name.
	vdisks    map[string][]vDisk
	vdiskFile string
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
	if isVDisk(im.cols) {
		im.set.Skipped = append(im.set.Skipped, v1alpha1.SkippedObject{
			Source: v1alpha1.Source{File: im.file, Line: h.line, Format: v1alpha1.FormatRVTools, Kind: "vDisk"},
			Reason: "a vDisk sheet describes disks, not VMs: it is read with the vInfo sheet beside it (RVTools_tabvInfo.csv beside RVTools_tabvDisk.csv)"})
		return
	}
	if im.cols.index[colVM] < 0 {
		im.errs = append(im.errs, diag.Errorf(im.file, h.line, 1, "", "the header row has no VM column; it has %s", quoteList(im.cols.names)).
			WithHint("export the vInfo sheet of RVTools, whose first column is VM, and keep its header row"))
		return
	}
	im.loadVDisk()
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
