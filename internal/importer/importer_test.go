package importer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

// TestDetectByContent names every input "input.txt": the kind must come from the content.
func TestDetectByContent(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		format v1alpha1.Format
		items  int
	}{
		{"strata", "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {image: x}\n", v1alpha1.FormatStrata, 1},
		{"strata as JSON", `{"apiVersion": "strata.dev/v1alpha1", "kind": "Workload", "metadata": {"name": "a"}, "spec": {}}`, v1alpha1.FormatStrata, 1},
		{"kubernetes", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x}]}\n", v1alpha1.FormatKubernetes, 1},
		{"kubernetes as JSON", `{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}}`, v1alpha1.FormatKubernetes, 1},
		{"compose", "services:\n  web: {image: nginx}\n  db: {image: postgres}\n", v1alpha1.FormatCompose, 2},
		{"rvtools", "VM,Powerstate,CPUs,Memory\nweb01,poweredOn,2,4096\n", v1alpha1.FormatRVTools, 1},
		{"rvtools with semicolons", "\ufeffVM;CPUs;Memory;OS according to the VMware Tools\nweb01;2;4096;CentOS 7 (64-bit)\n", v1alpha1.FormatRVTools, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, errs := File("input.txt", []byte(tt.src))
			if len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			if len(set.Items) != tt.items {
				t.Fatalf("got %d items, want %d", len(set.Items), tt.items)
			}
			for _, it := range set.Items {
				if it.Source.Format != tt.format || it.Source.File != "input.txt" || it.Source.Line < 1 {
					t.Errorf("source %+v, want format %s in input.txt", it.Source, tt.format)
				}
				if errs := v1alpha1.ValidateWorkload(&it.Workload); len(errs) > 0 {
					t.Errorf("imported workload is invalid: %v", errs)
				}
			}
		})
	}
}

func TestMixedStreamAndSkipped(t *testing.T) {
	src := "apiVersion: strata.dev/v1alpha1\nkind: Segment\nmetadata: {name: web}\n---\n" +
		"apiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\n" +
		"apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: web}\nspec: {image: x}\n---\n" +
		"apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: c, image: x}]}\n"
	set, errs := File("mixed.yaml", []byte(src))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var names []string
	for _, it := range set.Items {
		names = append(names, it.Workload.Metadata.Name+"@"+string(it.Source.Format))
	}
	if got := strings.Join(names, " "); got != "web@strata web-2@kubernetes" {
		t.Errorf("items %s, want the second web renamed web-2", got)
	}
	if len(set.Skipped) != 2 || set.Skipped[0].Source.Kind != "Segment" || set.Skipped[1].Source.Kind != "Service" {
		t.Errorf("skipped %+v, want the Segment and the Service", set.Skipped)
	}
}

func TestUnknownDocument(t *testing.T) {
	_, errs := File("x.yaml", []byte("a: 1\n---\n- just\n- a list\n"))
	if len(errs) != 2 || errs[0].Line != 1 || errs[1].Line != 3 || !strings.Contains(errs[0].Error(), "not a document strata reads") {
		t.Fatalf("got %v", errs)
	}
}

func TestInputs(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.yaml", "a.csv", "c.json", "notes.txt", "d.yml"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Inputs([]string{dir, "-"})
	if err != nil {
		t.Fatal(err)
	}
	var base []string
	for _, g := range got {
		base = append(base, filepath.Base(g))
	}
	if strings.Join(base, " ") != "a.csv b.yaml c.json d.yml -" {
		t.Errorf("inputs %v", base)
	}
	if _, err := Inputs([]string{filepath.Join(dir, "missing")}); err == nil {
		t.Error("a missing path gave no error")
	}
	empty := t.TempDir()
	if _, err := Inputs([]string{empty}); err == nil || !strings.Contains(err.Error(), "no .yaml") {
		t.Errorf("an empty directory: %v", err)
	}
}

// FuzzFile: whatever the bytes, importing never panics, and every workload it returns is
// valid, uniquely named and placed in the file.
func FuzzFile(f *testing.F) {
	for _, s := range []string{
		"services:\n  web: {image: nginx, ports: ['80:80']}\n",
		"VM,CPUs,Memory\na,1,1024\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x}]}\n",
		"apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {image: x}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, errs := File("in", data)
		seen := map[string]bool{}
		for _, it := range set.Items {
			name := it.Workload.Metadata.Name
			if seen[name] {
				t.Fatalf("two workloads named %q", name)
			}
			seen[name] = true
			if errs := v1alpha1.ValidateWorkload(&it.Workload); len(errs) > 0 {
				t.Fatalf("invalid workload %q: %v", name, errs)
			}
			if it.Source.File != "in" || it.Source.Line < 1 {
				t.Fatalf("item without a place: %+v", it.Source)
			}
		}
		for _, e := range errs {
			if e.File != "in" || e.Msg == "" {
				t.Fatalf("error without a file or message: %#v", e)
			}
		}
	})
}

// TestVMwareInputs reads a UTF-16 tab-separated vInfo export, says what to do with an Excel
// workbook, and maps a VM's disk into the disk directory of the options.
func TestVMwareInputs(t *testing.T) {
	text := "VM\tPowerstate\tCPUs\tMemory\tFirmware\tPath\r\nweb01\tpoweredOn\t2\t4096\tefi\t[ds1] web01/web01.vmx\r\n"
	data := []byte{0xFF, 0xFE}
	for _, r := range text {
		data = append(data, byte(r), 0)
	}
	dir := t.TempDir()
	set, errs := FileWith("vinfo.txt", data, Options{DiskDir: dir})
	if len(errs) > 0 || len(set.Items) != 1 {
		t.Fatalf("items %d, errors %v", len(set.Items), errs)
	}
	if vm := set.Items[0].Workload.Spec.VM; vm == nil || vm.Disk.Path != filepath.Join(dir, "ds1", "web01", "web01.vmdk") ||
		vm.Firmware != v1alpha1.FirmwareUEFI {
		t.Errorf("spec.vm %+v", vm)
	}

	// An .xlsx is a zip holding xl/workbook.xml; only its local header matters here.
	xlsx := append([]byte("PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00"), "xl/workbook.xml"...)
	set, errs = File("RVTools.xlsx", xlsx)
	if len(set.Items) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "RVTools.xlsx:1:1: an Excel workbook: save the vInfo sheet as CSV") {
		t.Errorf("errors: %v", errs)
	}
}

// TestKustomizationDirectory imports a directory of manifests beside its kustomization.yaml,
// which says neither apiVersion nor kind: the recipe is skipped with what to do, and
// neither the file nor the directory fails.
func TestKustomizationDirectory(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"kustomization.yaml": "resources:\n- deployment.yaml\n- service.yaml\nimages:\n- name: registry.example/web\n  newTag: \"2.4\"\n",
		"deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n" +
			"  template:\n    spec:\n      containers: [{name: web, image: registry.example/web:2.3}]\n",
		"service.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, errs := Files([]string{dir}, nil)
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if len(set.Items) != 1 || set.Items[0].Workload.Metadata.Name != "web" {
		t.Fatalf("items %+v, want the Deployment web", set.Items)
	}
	var reasons []string
	for _, s := range set.Skipped {
		reasons = append(reasons, filepath.Base(s.Source.File)+": "+s.Reason)
	}
	want := []string{
		"kustomization.yaml: a Kustomization is a recipe: render it with kubectl kustomize first",
		"service.yaml: kind Service describes no workload",
	}
	if strings.Join(reasons, "\n") != strings.Join(want, "\n") {
		t.Errorf("skipped:\n%s\nwant:\n%s", strings.Join(reasons, "\n"), strings.Join(want, "\n"))
	}
}

// TestStreamKeepsGoodDocuments imports the documents before a syntax error and reports it.
func TestStreamKeepsGoodDocuments(t *testing.T) {
	src := "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x}]}\n---\n" +
		"apiVersion: v1\nkind: Pod\nmetadata: {name: b\n"
	set, errs := File("broken.yaml", []byte(src))
	if len(set.Items) != 1 || len(errs) != 1 || errs[0].File != "broken.yaml" || errs[0].Line < 6 {
		t.Errorf("%d items and errors %v; want pod a and one syntax error after line 5", len(set.Items), errs)
	}
}
