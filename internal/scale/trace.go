package scale

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"strata.dev/strata/internal/diag"
)

// Trace is demand over time: the mean CPU, in cores, of each interval of Step from Start.
type Trace struct {
	Start time.Time
	Step  time.Duration
	CPU   []float64
}

// Duration is how long the trace lasts.
func (t *Trace) Duration() time.Duration { return time.Duration(len(t.CPU)) * t.Step }

// WriteCSV writes the trace in the csv format: a header, then timestamp (RFC 3339),cpu.
func (t *Trace) WriteCSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "timestamp,cpu")
	for i, c := range t.CPU {
		fmt.Fprintf(bw, "%s,%s\n", t.Start.Add(time.Duration(i)*t.Step).UTC().Format(time.RFC3339),
			strconv.FormatFloat(c, 'f', 4, 64))
	}
	return bw.Flush()
}

// Format is a layout of trace file.
type Format string

// Trace formats.
const (
	// FormatAuto tells the format from the number of columns: 2 csv, 5 azure, 9 alibaba.
	FormatAuto Format = ""
	// FormatCSV is timestamp,cpu: RFC 3339 or unix seconds, and cores; a header line is optional.
	FormatCSV Format = "csv"
	// FormatAzure is the Azure Public Dataset's vm_cpu_readings: timestamp (seconds),vmid,
	// min_cpu,max_cpu,avg_cpu with CPU in percent of the VM.
	FormatAzure Format = "azure"
	// FormatAlibaba is the Alibaba cluster trace's machine_usage: machine_id,time_stamp
	// (seconds),cpu_util_percent,mem_util_percent,mem_gps,mkpi,net_in,net_out,disk_io_percent.
	FormatAlibaba Format = "alibaba"
)

// Formats lists the formats ReadTrace reads.
var Formats = []Format{FormatCSV, FormatAzure, FormatAlibaba}

// layout is where a format keeps what the reader needs.
type layout struct {
	columns   int
	time, cpu int
	key       int  // column of the VM or machine id; -1 for none
	percent   bool // cpu is a percentage of one VM or machine
	header    string
}

var layouts = map[Format]layout{
	FormatCSV:     {columns: 2, time: 0, cpu: 1, key: -1, header: "timestamp,cpu"},
	FormatAzure:   {columns: 5, time: 0, cpu: 4, key: 1, percent: true, header: "timestamp,vmid,min_cpu,max_cpu,avg_cpu"},
	FormatAlibaba: {columns: 9, time: 1, cpu: 2, key: 0, percent: true, header: "machine_id,time_stamp,cpu_util_percent,mem_util_percent,mem_gps,mkpi,net_in,net_out,disk_io_percent"},
}

// ReadOptions say how to read a trace.
type ReadOptions struct {
	Format Format
	// Cores converts the percent formats to cores: CPU percent / 100 * Cores, the cores of one
	// VM (azure) or machine (alibaba). Required for those formats.
	Cores float64
	// Select keeps the readings of one VM (azure vmid) or machine (alibaba machine_id). Empty
	// sums all of them: the demand of the whole set, interval by interval.
	Select string
}

// maxTraceErrors bounds the problems ReadTrace reports about one file.
const maxTraceErrors = 20

// reading is one parsed line.
type reading struct {
	line int
	at   float64 // unix seconds
	raw  string  // the timestamp as written
	key  string
	cpu  float64 // cores
}

// ReadTrace reads a trace file (name is for errors). Readings are put on a grid of the step
// that separates most of them (the median gap); readings of one VM or machine that fall in the
// same interval are averaged, and different VMs or machines are summed. Every problem is
// reported with the file and line: a wrong number of columns, a number that does not parse, a
// negative value, timestamps out of order, and gaps longer than 1.5 steps.
func ReadTrace(name string, r io.Reader, opt ReadOptions) (*Trace, diag.List) {
	rd := &traceReader{file: name, opt: opt}
	rows := rd.parse(r)
	if len(rd.errs) > 0 {
		return nil, rd.errs
	}
	if opt.Select != "" {
		rows = slices.DeleteFunc(rows, func(x reading) bool { return x.key != opt.Select })
		if len(rows) == 0 {
			return nil, diag.List{{File: name, Msg: fmt.Sprintf("no readings of %q", opt.Select),
				Hint: "check the VM or machine id, or select none to sum them all"}}
		}
	}
	if len(rows) < 2 {
		return nil, diag.List{{File: name, Msg: fmt.Sprintf("%d readings: a trace needs at least two", len(rows)),
			Hint: "give one line per interval"}}
	}
	return rd.grid(rows)
}

type traceReader struct {
	file   string
	opt    ReadOptions
	format Format
	lay    layout
	errs   diag.List
}

func (rd *traceReader) fail(line int, hint, format string, args ...any) {
	if len(rd.errs) == maxTraceErrors {
		rd.errs = append(rd.errs, &diag.Error{File: rd.file, Line: line, Msg: "too many problems; stopped reading"})
	}
	if len(rd.errs) > maxTraceErrors {
		return
	}
	rd.errs = append(rd.errs, &diag.Error{File: rd.file, Line: line, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

func (rd *traceReader) parse(r io.Reader) []reading {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var rows []reading
	lineNo := 0
	for sc.Scan() {
		lineNo++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Split(text, ",")
		if rd.format == "" && !rd.detect(lineNo, fields) {
			return nil
		}
		if len(rows) == 0 && len(rd.errs) == 0 && isHeader(fields[min(rd.lay.time, len(fields)-1)]) {
			continue
		}
		if len(fields) != rd.lay.columns {
			rd.fail(lineNo, "each line is "+rd.lay.header, "%d columns, want %d for the %s format", len(fields), rd.lay.columns, rd.format)
			continue
		}
		if row, ok := rd.row(lineNo, fields); ok {
			rows = append(rows, row)
		}
		if len(rd.errs) > maxTraceErrors {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		rd.fail(lineNo+1, "", "read: %v", err)
	}
	if rd.format == "" && len(rd.errs) == 0 {
		rd.fail(0, "give one line per interval: timestamp,cpu", "the file holds no readings")
	}
	return rows
}

// detect settles the format from the first line, unless one was given.
func (rd *traceReader) detect(line int, fields []string) bool {
	rd.format = rd.opt.Format
	if rd.format == FormatAuto {
		for _, f := range Formats {
			if layouts[f].columns == len(fields) {
				rd.format = f
			}
		}
		if rd.format == FormatAuto {
			rd.fail(line, "give --format csv, azure or alibaba, or fix the file",
				"cannot tell the format from %d columns: csv has 2, azure 5, alibaba 9", len(fields))
			return false
		}
	}
	lay, ok := layouts[rd.format]
	if !ok {
		rd.fail(0, "use csv, azure or alibaba", "unknown trace format %q", rd.format)
		return false
	}
	rd.lay = lay
	if lay.percent && !(rd.opt.Cores > 0) {
		rd.fail(0, "give the cores of one VM or machine with --cores (the Azure dataset's vmtable and the Alibaba machine_meta list them)",
			"the %s format gives CPU in percent, and the simulator needs cores", rd.format)
		return false
	}
	return true
}

// isHeader reports whether a timestamp field is a column name: letters and underscores only.
func isHeader(f string) bool {
	f = strings.TrimSpace(f)
	return f != "" && strings.IndexFunc(f, func(r rune) bool { return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && r != '_' }) < 0
}

func (rd *traceReader) row(line int, fields []string) (reading, bool) {
	lay := rd.lay
	at, err := parseTime(strings.TrimSpace(fields[lay.time]))
	if err != nil {
		rd.fail(line, "use RFC 3339 (2024-01-01T00:00:00Z) or unix seconds", "timestamp %q: %v", fields[lay.time], err)
		return reading{}, false
	}
	raw := strings.TrimSpace(fields[lay.cpu])
	cpu, err := strconv.ParseFloat(raw, 64)
	switch {
	case err != nil || math.IsNaN(cpu) || math.IsInf(cpu, 0):
		rd.fail(line, "give a number", "cpu %q is not a number", raw)
		return reading{}, false
	case cpu < 0:
		rd.fail(line, "CPU use cannot be negative", "cpu %s is negative", raw)
		return reading{}, false
	}
	if lay.percent {
		cpu = cpu / 100 * rd.opt.Cores
	}
	key := ""
	if lay.key >= 0 {
		key = strings.TrimSpace(fields[lay.key])
	}
	return reading{line: line, at: at, raw: strings.TrimSpace(fields[lay.time]), key: key, cpu: cpu}, true
}

// parseTime reads unix seconds (possibly fractional) or an RFC 3339 time.
func parseTime(s string) (float64, error) {
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return 0, fmt.Errorf("not a time")
		}
		return v, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("neither unix seconds nor RFC 3339")
	}
	return float64(t.UnixNano()) / 1e9, nil
}

// grid checks order and gaps per VM or machine, then sums them interval by interval.
func (rd *traceReader) grid(rows []reading) (*Trace, diag.List) {
	byKey := map[string][]reading{}
	var keys []string
	for _, x := range rows {
		if _, ok := byKey[x.key]; !ok {
			keys = append(keys, x.key)
		}
		byKey[x.key] = append(byKey[x.key], x)
	}
	var gaps []float64
	for _, k := range keys {
		rs := byKey[k]
		for i := 1; i < len(rs); i++ {
			d := rs[i].at - rs[i-1].at
			if d <= 0 {
				rd.fail(rs[i].line, "sort the file by time", "timestamp %s is not after %s of line %d%s",
					rs[i].raw, rs[i-1].raw, rs[i-1].line, of(k))
				continue
			}
			gaps = append(gaps, d)
		}
	}
	if len(rd.errs) > 0 {
		return nil, rd.errs
	}
	if len(gaps) == 0 {
		return nil, diag.List{{File: rd.file, Msg: "no VM or machine has two readings", Hint: "select one with readings over time"}}
	}
	slices.Sort(gaps)
	step := gaps[len(gaps)/2]
	if step < 0.001 {
		return nil, diag.List{{File: rd.file, Msg: fmt.Sprintf("readings are %gs apart: the simulator's resolution is 1ms", step),
			Hint: "average the readings over coarser intervals"}}
	}
	if step > maxStepSeconds {
		return nil, diag.List{{File: rd.file, Msg: fmt.Sprintf("readings are %s apart: the simulator's step is at most a day", fmtSeconds(step)),
			Hint: "give readings at most a day apart (scaling decides in minutes)"}}
	}
	for _, k := range keys {
		rs := byKey[k]
		for i := 1; i < len(rs); i++ {
			if d := rs[i].at - rs[i-1].at; d > 1.5*step {
				rd.fail(rs[i].line, "fill in the missing readings, or cut the trace at the gap",
					"gap of %s after line %d%s: the trace's step is %s, and at most 1.5 steps may pass between readings",
					fmtSeconds(d), rs[i-1].line, of(k), fmtSeconds(step))
			}
		}
	}
	if len(rd.errs) > 0 {
		return nil, rd.errs
	}
	start := rows[0].at
	for _, x := range rows {
		start = math.Min(start, x.at)
	}
	last := 0
	type cell struct {
		sum float64
		n   int
	}
	cells := map[[2]int]cell{} // (key index, interval) -> readings
	for ki, k := range keys {
		for _, x := range byKey[k] {
			i := int(math.Round((x.at - start) / step))
			c := cells[[2]int{ki, i}]
			cells[[2]int{ki, i}] = cell{c.sum + x.cpu, c.n + 1}
			last = max(last, i)
		}
	}
	if last >= len(rows) { // more intervals than readings: some interval has none
		return nil, diag.List{{File: rd.file, Msg: fmt.Sprintf("%d readings spread over %d intervals of %s: the VMs or machines do not overlap in time", len(rows), last+1, fmtSeconds(step)),
			Hint: "select one VM or machine, or give readings that cover the same time"}}
	}
	cpu := make([]float64, last+1)
	seen := make([]bool, last+1)
	for ki, c := range cells {
		cpu[ki[1]] += c.sum / float64(c.n)
		seen[ki[1]] = true
	}
	for i, ok := range seen {
		if !ok {
			return nil, diag.List{{File: rd.file, Msg: fmt.Sprintf("no reading at all in interval %d (%s after the start)", i, fmtSeconds(float64(i)*step)),
				Hint: "fill in the missing readings, or cut the trace at the gap"}}
		}
	}
	sec, frac := math.Modf(start)
	return &Trace{
		Start: time.Unix(int64(sec), int64(frac*1e9)).UTC(),
		Step:  time.Duration(step * float64(time.Second)).Round(time.Millisecond),
		CPU:   cpu,
	}, nil
}

// maxStepSeconds bounds a trace's step: scaling decides in minutes, and a step of
// centuries would not fit a time.Duration.
const maxStepSeconds = 24 * 60 * 60

func of(key string) string {
	if key == "" {
		return ""
	}
	return " (" + key + ")"
}

// fmtSeconds prints seconds as a duration such as 5m0s.
func fmtSeconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}
