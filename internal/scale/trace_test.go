package scale

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func readTestTrace(t *testing.T, name string, opt ReadOptions) (*Trace, string) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, errs := ReadTrace(name, f, opt)
	return tr, errs.Error()
}

func TestReadTrace(t *testing.T) {
	tests := []struct {
		file  string
		opt   ReadOptions
		start string
		step  time.Duration
		cpu   []float64
	}{
		{"demand.csv", ReadOptions{}, "2024-01-01T00:00:00Z", 5 * time.Minute, []float64{1.5, 2, 2.5, 0}},
		{"unix.csv", ReadOptions{Format: FormatCSV}, "2024-01-01T00:00:00Z", 5 * time.Minute, []float64{1, 2, 3}},
		// Two 4-core VMs summed: (10% + 50%) of 4 cores, ...
		{"azure.csv", ReadOptions{Cores: 4}, "1970-01-01T00:00:00Z", 5 * time.Minute, []float64{2.4, 2.4, 1.6}},
		{"azure.csv", ReadOptions{Cores: 4, Select: "vm-b"}, "1970-01-01T00:00:00Z", 5 * time.Minute, []float64{2, 1.6, 0.4}},
		// Two 96-core machines summed; empty columns are fine.
		{"alibaba.csv", ReadOptions{Cores: 96}, "1970-01-01T00:00:00Z", time.Minute, []float64{57.6, 67.2, 67.2}},
		{"alibaba.csv", ReadOptions{Format: FormatAlibaba, Cores: 10, Select: "m_1"}, "1970-01-01T00:00:00Z", time.Minute, []float64{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.file+" "+tt.opt.Select, func(t *testing.T) {
			tr, errs := readTestTrace(t, tt.file, tt.opt)
			if errs != "" {
				t.Fatal(errs)
			}
			if got := tr.Start.Format(time.RFC3339); got != tt.start || tr.Step != tt.step {
				t.Errorf("start %s step %v, want %s %v", got, tr.Step, tt.start, tt.step)
			}
			if !slices.EqualFunc(tr.CPU, tt.cpu, func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }) {
				t.Errorf("cpu %v, want %v", tr.CPU, tt.cpu)
			}
		})
	}
}

func TestReadTraceErrors(t *testing.T) {
	tests := []struct {
		file string
		opt  ReadOptions
		want []string // the first lines of the error, in order
		more bool     // more lines follow
	}{
		{"unsorted.csv", ReadOptions{}, []string{"unsorted.csv:4: timestamp 200 is not after 300 of line 3 (sort the file by time)"}, false},
		{"gap.csv", ReadOptions{}, []string{"gap.csv:4: gap of 10m0s after line 3: the trace's step is 5m0s, and at most 1.5 steps may pass between readings"}, false},
		{"negative.csv", ReadOptions{}, []string{"negative.csv:2: cpu -2 is negative"}, false},
		{"columns.csv", ReadOptions{}, []string{"columns.csv:2: 3 columns, want 2 for the csv format (each line is timestamp,cpu)"}, false},
		{"number.csv", ReadOptions{}, []string{
			`number.csv:2: cpu "lots" is not a number`,
			`number.csv:4: timestamp "yesterday": neither unix seconds nor RFC 3339`}, false},
		{"azure.csv", ReadOptions{}, []string{"azure.csv: the azure format gives CPU in percent, and the simulator needs cores"}, false},
		{"azure.csv", ReadOptions{Format: FormatCSV}, []string{"azure.csv:1: 5 columns, want 2 for the csv format", "azure.csv:2: 5 columns"}, true},
		{"azure.csv", ReadOptions{Cores: 2, Select: "vm-z"}, []string{`azure.csv: no readings of "vm-z"`}, false},
		{"demand.csv", ReadOptions{Format: "parquet"}, []string{`demand.csv: unknown trace format "parquet"`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			tr, errs := readTestTrace(t, tt.file, tt.opt)
			if tr != nil {
				t.Fatalf("read a trace of %d points, want an error", len(tr.CPU))
			}
			lines := strings.Split(errs, "\n")
			if len(lines) < len(tt.want) || (len(lines) > len(tt.want)) != tt.more {
				t.Fatalf("errors:\n%s\nwant %d", errs, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("error %d:\n%s\nwant it to start\n%s", i, lines[i], w)
				}
			}
		})
	}
}

func TestTraceCSVRoundTrip(t *testing.T) {
	tr := Synthetic(2, 5*time.Minute, 7, SynthOptions{})
	var buf bytes.Buffer
	if err := tr.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	back, errs := ReadTrace("synthetic.csv", &buf, ReadOptions{})
	if errs != nil {
		t.Fatal(errs)
	}
	if !back.Start.Equal(tr.Start) || back.Step != tr.Step || len(back.CPU) != len(tr.CPU) {
		t.Fatalf("read back start %v step %v n %d, want %v %v %d", back.Start, back.Step, len(back.CPU), tr.Start, tr.Step, len(tr.CPU))
	}
	for i := range tr.CPU {
		if d := back.CPU[i] - tr.CPU[i]; d > 1e-4 || d < -1e-4 {
			t.Fatalf("point %d: %v, want %v", i, back.CPU[i], tr.CPU[i])
		}
	}
}

// FuzzReadTrace feeds the reader arbitrary files: it must return a trace or errors, never
// panic, and a trace it returns has a positive step and no negative demand.
func FuzzReadTrace(f *testing.F) {
	for _, name := range []string{"demand.csv", "unix.csv", "azure.csv", "alibaba.csv", "gap.csv", "number.csv"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, errs := ReadTrace("fuzz.csv", bytes.NewReader(data), ReadOptions{Cores: 2})
		if (tr == nil) == (errs == nil) {
			t.Fatalf("trace %v and errors %v: want exactly one", tr != nil, errs)
		}
		if tr == nil {
			return
		}
		if tr.Step <= 0 {
			t.Fatalf("step %v", tr.Step)
		}
		for _, c := range tr.CPU {
			if c < 0 {
				t.Fatalf("negative demand %v", c)
			}
		}
	})
}
