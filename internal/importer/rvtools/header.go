package rvtools

import (
	"bytes"
	"fmt"
	"strings"
)

// column is a vInfo column the importer reads.
type column int

const (
	colVM column = iota
	colPowerstate
	colTemplate
	colCPUs
	colMemory
	colOSConfig
	colOSTools
	colAnnotation
	colCluster
	colHost
	colDatacenter
	colProvisioned
	colTotalDisk
	colInUse
	colPrimaryIP
	colPath     // the VM's configuration file: "[ds1] web01/web01.vmx"
	colFirmware // bios or efi
	// Columns of the vDisk sheet.
	colDisk       // the disk's label: "Hard disk 1"
	colDiskPath   // "[ds1] web01/web01.vmdk"
	colCapacity   // the disk's size in MiB
	colController // "SCSI controller 0", "SATA controller 0", "IDE 0"
	numColumns
)

// columnNames maps header names, in lower case with single spaces, to columns. Older RVTools
// versions say MB where newer ones say MiB.
var columnNames = map[string]column{
	"vm":                                     colVM,
	"powerstate":                             colPowerstate,
	"power state":                            colPowerstate,
	"template":                               colTemplate,
	"cpus":                                   colCPUs,
	"memory":                                 colMemory,
	"memory mib":                             colMemory,
	"memory (mib)":                           colMemory,
	"memory mb":                              colMemory,
	"os according to the configuration file": colOSConfig,
	"os according to the vmware tools":       colOSTools,
	"annotation":                             colAnnotation,
	"cluster":                                colCluster,
	"host":                                   colHost,
	"datacenter":                             colDatacenter,
	"provisioned mib":                        colProvisioned,
	"provisioned mb":                         colProvisioned,
	"total disk capacity mib":                colTotalDisk,
	"total disk capacity mb":                 colTotalDisk,
	"in use mib":                             colInUse,
	"in use mb":                              colInUse,
	"primary ip address":                     colPrimaryIP,
	"path":                                   colPath,
	"firmware":                               colFirmware,
	"disk":                                   colDisk,
	"disk path":                              colDiskPath,
	"capacity mib":                           colCapacity,
	"capacity mb":                            colCapacity,
	"controller":                             colController,
}

// columns says where each known column is in a row.
type columns struct {
	index [numColumns]int // -1 when the column is missing
	names []string        // every header name as written, trimmed
}

// mapColumns finds the known columns in a header row. When a name appears twice, the first
// one counts.
func mapColumns(fields []string) columns {
	var c columns
	for i := range c.index {
		c.index[i] = -1
	}
	c.names = make([]string, len(fields))
	for i, f := range fields {
		name := strings.TrimSpace(f)
		c.names[i] = name
		if col, ok := columnNames[strings.ToLower(strings.Join(strings.Fields(name), " "))]; ok && c.index[col] < 0 {
			c.index[col] = i
		}
	}
	return c
}

// header is where the header row starts and how the file is delimited.
type header struct {
	text  []byte // the header line
	rest  []byte // the file from the header line on
	comma rune
	line  int  // the header's line in the file, from 1
	bom   bool // the file starts with a UTF-8 BOM, which is not in rest
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// findHeader skips a UTF-8 BOM and blank lines and returns the first line after them. A
// line "sep=;" (which Excel writes and reads) sets the delimiter and is skipped too;
// otherwise the delimiter is the one the header line uses most outside quotes.
func findHeader(data []byte) (header, bool) {
	var h header
	if bytes.HasPrefix(data, utf8BOM) {
		data = data[len(utf8BOM):]
		h.bom = true
	}
	line := 1
	for len(data) > 0 {
		text, next, found := bytes.Cut(data, []byte("\n"))
		text = bytes.TrimSuffix(text, []byte("\r"))
		if len(bytes.TrimSpace(text)) == 0 {
			if !found {
				break
			}
			data, line = next, line+1
			continue
		}
		if h.comma == 0 {
			if c, ok := sepDirective(text); ok && found {
				h.comma = c
				data, line = next, line+1
				continue
			}
		}
		h.text, h.rest, h.line = text, data, line
		if h.comma == 0 {
			h.comma = sniff(text)
		}
		return h, true
	}
	return h, false
}

// sepDirective reads Excel's "sep=X" line.
func sepDirective(line []byte) (rune, bool) {
	s := strings.TrimSpace(string(line))
	if len(s) != 5 || !strings.EqualFold(s[:4], "sep=") {
		return 0, false
	}
	switch s[4] {
	case ',', ';', '\t':
		return rune(s[4]), true
	}
	return 0, false
}

// sniff returns the delimiter the header line uses most outside double quotes: ',', ';' or
// tab; ',' when it uses none.
func sniff(line []byte) rune {
	counts := map[rune]int{}
	quoted := false
	for _, c := range line {
		switch c {
		case '"':
			quoted = !quoted
		case ',', ';', '\t':
			if !quoted {
				counts[rune(c)]++
			}
		}
	}
	best := ','
	for _, c := range []rune{';', '\t'} {
		if counts[c] > counts[best] {
			best = c
		}
	}
	return best
}

// absLine turns a line of the CSV reader, which starts reading at the header, into a line
// of the file.
func (h *header) absLine(line int) int {
	return line + h.line - 1
}

// abs turns a line and column of the CSV reader into ones of the file.
func (h *header) abs(line, col int) (int, int) {
	line = h.absLine(line)
	if line == 1 && h.bom && col > 0 {
		col += len(utf8BOM)
	}
	return line, col
}

func delimName(c rune) string {
	switch c {
	case ';':
		return "';'"
	case '\t':
		return "tabs"
	}
	return "','"
}

// quoteList prints names as "a", "b", "c", or "no columns".
func quoteList(names []string) string {
	if len(names) == 0 || len(names) == 1 && names[0] == "" {
		return "no columns"
	}
	const most = 20
	q := make([]string, 0, min(len(names), most)+1)
	for _, n := range names[:min(len(names), most)] {
		q = append(q, fmt.Sprintf("%q", n))
	}
	if len(names) > most {
		q = append(q, fmt.Sprintf("and %d more", len(names)-most))
	}
	return "columns " + strings.Join(q, ", ")
}
