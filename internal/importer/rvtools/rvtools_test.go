package rvtools

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/golden"
	"strata.dev/strata/internal/inventory"
)

// TestGolden imports every testdata/*.csv and compares the result with X.golden.json (the
// inventory.Set as indented JSON) and X.errors.golden (the errors, one a line).
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.csv")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Base(path)
			set, errs := Import(file, data)
			checkInvariants(t, file, set.Items, set.Skipped, errs)
			got, err := json.MarshalIndent(set, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(path, ".csv")
			golden.Compare(t, base+".golden.json", append(got, '\n'))
			var lines bytes.Buffer
			for _, e := range errs {
				lines.WriteString(e.Error())
				lines.WriteByte('\n')
			}
			golden.Compare(t, base+".errors.golden", lines.Bytes())
		})
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		data string
		want bool
	}{
		{"vinfo", "VM,Powerstate,CPUs\nweb,poweredOn,2\n", true},
		{"bom and blank lines", "\xef\xbb\xbf\n  \r\nVM;CPUs;Memory\r\nweb;2;4096\r\n", true},
		{"tabs", "VM\tOS according to the VMware Tools\nweb\tCentOS 7\n", true},
		{"quoted header", "\"VM\",\"Memory\"\n", true},
		{"any case", " vm , CPUS \n", true},
		{"excel sep line", "sep=;\nVM;Host\n", true},
		{"only VM", "VM\nweb\n", false},
		{"no VM", "Name,CPUs,Memory\n", false},
		{"yaml", "apiVersion: strata.dev/v1alpha1\nkind: Workload\n", false},
		{"compose", "services:\n  web:\n    image: nginx\n", false},
		{"empty", "", false},
		{"blank", "\n\n  \n", false},
		{"VM column later in a data row", "Name,CPUs\nVM,Host\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Detect([]byte(tt.data)); got != tt.want {
				t.Errorf("Detect(%q) = %v, want %v", tt.data, got, tt.want)
			}
		})
	}
	for _, f := range []string{"testdata/vinfo.csv", "testdata/vinfo-semicolon.csv"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !Detect(data) {
			t.Errorf("Detect(%s) = false", f)
		}
	}
}

// TestImportCases checks single behaviors on small inputs.
func TestImportCases(t *testing.T) {
	const hdr = "VM,Powerstate,CPUs,Memory\n"
	tests := []struct {
		name  string
		data  string
		names []string // names of the imported workloads
		errs  []string // errors, formatted
		check func(t *testing.T, w []v1alpha1.Workload)
	}{
		{name: "unique names", data: hdr + "web,poweredOn,1,512\nWEB,poweredOn,1,512\nweb-2,poweredOn,1,512\nWeb!,poweredOn,1,512\n",
			names: []string{"web", "web-2", "web-2-2", "web-3"}},
		{name: "names that sanitize to nothing", data: hdr + "___,poweredOn,1,512\n数据库,poweredOn,1,512\n",
			names: []string{"vm-2", "vm-3"}},
		{name: "long names", data: hdr + strings.Repeat("a", 70) + ",poweredOn,1,512\n" + strings.Repeat("a", 70) + ",poweredOn,1,512\n",
			names: []string{strings.Repeat("a", 63), strings.Repeat("a", 61) + "-2"}},
		{name: "blank rows are ignored", data: hdr + ",,,\n  ,, ,\nweb,poweredOn,1,512\n", names: []string{"web"}},
		{name: "missing optional columns keep defaults", data: "VM\nweb\n", names: []string{"web"},
			check: func(t *testing.T, w []v1alpha1.Workload) {
				s := w[0].Spec
				if s.Resources.CPU.String() != v1alpha1.DefaultCPU || *s.Replicas != 1 || s.Traits.OS != v1alpha1.OSLinux || *s.Traits.ImageAvailable {
					t.Errorf("spec = %+v", s)
				}
			}},
		{name: "powered off", data: hdr + "web,poweredOff,1,512\n", names: []string{"web"},
			check: func(t *testing.T, w []v1alpha1.Workload) {
				if *w[0].Spec.Replicas != 0 || w[0].Metadata.Annotations[AnnotationPowerstate] != "poweredOff" {
					t.Errorf("replicas = %d, annotations %v", *w[0].Spec.Replicas, w[0].Metadata.Annotations)
				}
			}},
		{name: "tools column wins", data: "VM,OS according to the configuration file,OS according to the VMware Tools\n" +
			"a,CentOS 4/5 or later (64-bit),CentOS 7 (64-bit)\nb,Microsoft Windows Server 2012 (64-bit),\n",
			names: []string{"a", "b"},
			check: func(t *testing.T, w []v1alpha1.Workload) {
				if w[0].Spec.Traits.OSVersion != "CentOS 7" || w[1].Spec.Traits.OSVersion != "Windows Server 2012" || w[1].Spec.Traits.OS != v1alpha1.OSWindows {
					t.Errorf("traits = %+v, %+v", w[0].Spec.Traits, w[1].Spec.Traits)
				}
			}},
		{name: "annotation tokens", data: "VM,Annotation\nweb,\"strata.dev/trust = UNTRUSTED; strata.dev/data:'regulated', STRATA.DEV/tenancy=multi (strata.dev/tenant=shop).\"\n",
			names: []string{"web"},
			check: func(t *testing.T, w []v1alpha1.Workload) {
				tr := w[0].Spec.Traits
				if tr.Trust != v1alpha1.TrustUntrusted || tr.Data != v1alpha1.DataRegulated || tr.Tenancy != v1alpha1.TenancyMulti ||
					w[0].Metadata.Labels[v1alpha1.LabelTenant] != "shop" {
					t.Errorf("traits = %+v, labels %v", tr, w[0].Metadata.Labels)
				}
			}},
		{name: "conflicting annotation tokens", data: "VM,Annotation\nweb,strata.dev/trust=trusted strata.dev/trust=untrusted\n",
			errs: []string{`f.csv:2:5: Annotation: strata.dev/trust is given twice, as "trusted" and "untrusted" (give it once)`}},
		{name: "missing VM column", data: "\n\nName,CPUs\nweb,2\n",
			errs: []string{`f.csv:3:1: the header row has no VM column; it has columns "Name", "CPUs" (export the vInfo sheet of RVTools, whose first column is VM, and keep its header row)`}},
		{name: "empty file", data: "",
			errs: []string{"f.csv:1: the file has no header row (export the vInfo sheet of RVTools as CSV; its first row names the columns: VM, Powerstate, CPUs, Memory, ...)"}},
		{name: "header quoting error after a BOM", data: "\xef\xbb\xbfVM,x\"y\nweb,2\n",
			errs: []string{`f.csv:1:8: CSV syntax: bare " in non-quoted-field; the rest of the file is not read (enclose values that contain quotes, ',' or line breaks in double quotes, and double the quotes inside them)`}},
		{name: "field count", data: hdr + "a,poweredOn,1\nb,poweredOn,1,512\n", names: []string{"b"},
			errs: []string{"f.csv:2:1: the row has 3 fields but the header row has 4; the row is skipped (quote values that contain ',', and keep every row as wide as the header)"}},
		{name: "excel sep line", data: "sep=;\nVM;a,b,c\nweb;1,2,3\n", names: []string{"web"}},
		{name: "grouped numbers", data: "VM\tCPUs\tMemory\tProvisioned MiB\nweb\t2\t\"4,096\"\t1 024.5\n", names: []string{"web"},
			check: func(t *testing.T, w []v1alpha1.Workload) {
				r := w[0].Spec.Resources
				if r.Memory.String() != "4Gi" || r.Disk.String() != "1025Mi" {
					t.Errorf("resources = %v, %v", r.Memory.String(), r.Disk.String())
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, errs := Import("f.csv", []byte(tt.data))
			checkInvariants(t, "f.csv", set.Items, set.Skipped, errs)
			var names []string
			var ws []v1alpha1.Workload
			for _, it := range set.Items {
				names = append(names, it.Workload.Metadata.Name)
				ws = append(ws, it.Workload)
			}
			if strings.Join(names, " ") != strings.Join(tt.names, " ") {
				t.Errorf("names = %q, want %q", names, tt.names)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.errs, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.errs, "\n"))
			}
			if tt.check != nil && len(ws) > 0 {
				tt.check(t, ws)
			}
		})
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in       string
		fraction bool
		want     int64
		err      error
	}{
		{"4096", false, 4096, nil},
		{"4,096", false, 4096, nil},
		{"4.096", false, 4096, nil},
		{"1 048 576", false, 1048576, nil},
		{"1\u00a0048\u00a0576", false, 1048576, nil},
		{"1'048'576", false, 1048576, nil},
		{"-2", false, -2, nil},
		{"1.5", true, 2, nil},
		{"1,5", true, 2, nil},
		{"812.345,75", true, 812346, nil},
		{"4,096.25", true, 4097, nil},
		{"10.0", false, 10, nil},
		{"1.5", false, 0, errFraction},
		{"1.2.3", false, 0, errNotNumber},
		{"1,234.567.8", true, 0, errNotNumber},
		{"12,34,567", false, 0, errNotNumber},
		{"two", false, 0, errNotNumber},
		{"", false, 0, errNotNumber},
		{"-", false, 0, errNotNumber},
		{"1,", false, 0, errNotNumber},
		{",1", false, 0, errNotNumber},
		{"99999999999999999999", false, 0, errRange},
		{"9223372036854775807.5", true, 0, errRange},
	}
	for _, tt := range tests {
		got, err := parseNumber(tt.in, tt.fraction)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("parseNumber(%q, %v) = %d, %v, want %d, %v", tt.in, tt.fraction, got, err, tt.want, tt.err)
		}
	}
}

func TestDNSLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"DC01", "dc01"},
		{"SQL-PROD_01", "sql-prod-01"},
		{"FileServer 2008", "fileserver-2008"},
		{"  --weird__name--  ", "weird-name"},
		{"Büro-Drucker", "b-ro-drucker"},
		{"HR-APP (old)", "hr-app-old"},
		{"___", ""},
		{strings.Repeat("ab-", 30), strings.Repeat("ab-", 20) + "ab"},
	}
	for _, tt := range tests {
		if got := dnsLabel(tt.in); got != tt.want {
			t.Errorf("dnsLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// checkInvariants asserts what every Import result must satisfy.
func checkInvariants(t *testing.T, file string, items []inventory.Item, skipped []v1alpha1.SkippedObject, errs diag.List) {
	t.Helper()
	seen := map[string]bool{}
	for _, it := range items {
		w := it.Workload
		if ferrs := v1alpha1.ValidateWorkload(&w); len(ferrs) > 0 {
			t.Errorf("workload %q does not validate: %v", w.Metadata.Name, ferrs)
		}
		if seen[w.Metadata.Name] {
			t.Errorf("name %q is used twice", w.Metadata.Name)
		}
		seen[w.Metadata.Name] = true
		if it.Source.File != file || it.Source.Line < 1 || it.Source.Format != v1alpha1.FormatRVTools {
			t.Errorf("workload %q has source %+v", w.Metadata.Name, it.Source)
		}
		if w.Spec.Traits.ImageAvailable == nil || *w.Spec.Traits.ImageAvailable {
			t.Errorf("workload %q: imageAvailable is not false", w.Metadata.Name)
		}
		if w.Spec.Isolation != v1alpha1.IsolationAuto {
			t.Errorf("workload %q: isolation %q", w.Metadata.Name, w.Spec.Isolation)
		}
	}
	for _, s := range skipped {
		if s.Source.File != file || s.Source.Line < 1 || s.Reason == "" {
			t.Errorf("skipped object %+v", s)
		}
	}
	for _, e := range errs {
		if e.File != file || e.Line < 1 || e.Msg == "" {
			t.Errorf("error %q lacks its file or line", e.Error())
		}
	}
}
