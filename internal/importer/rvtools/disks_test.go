package rvtools

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/inventory"
)

// copyDisksInventory puts testdata/disks (a vInfo sheet and the vDisk sheet beside it)
// into a directory of its own and returns the vInfo sheet's path and content.
func copyDisksInventory(t *testing.T) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"RVTools_tabvInfo.csv", "RVTools_tabvDisk.csv"} {
		data, err := os.ReadFile(filepath.Join("testdata", "disks", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "RVTools_tabvInfo.csv")
	data, _ := os.ReadFile(file)
	return file, data
}

func itemNamed(t *testing.T, set inventory.Set, name string) inventory.Item {
	t.Helper()
	for _, it := range set.Items {
		if it.Workload.Metadata.Name == name {
			return it
		}
	}
	t.Fatalf("no item %s among %d", name, len(set.Items))
	return inventory.Item{}
}

func hasNote(it inventory.Item, parts ...string) bool {
	for _, n := range it.Notes {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(n.Message, p)
		}
		if all {
			return true
		}
	}
	return false
}

// TestDisks imports VMs with their disks: from the vInfo Path column, or from the vDisk
// sheet beside it (the first disk by number, its controller's bus), mapped into the disk
// directory; firmware from the Firmware column; a Windows guest on SATA and e1000.
func TestDisks(t *testing.T) {
	file, data := copyDisksInventory(t)
	diskDir := t.TempDir()
	web := filepath.Join(diskDir, "ds-dmz01", "web01", "web01.vmdk")
	if err := os.MkdirAll(filepath.Dir(web), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(web, []byte("# Disk DescriptorFile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	set, errs := ImportWith(file, data, Options{DiskDir: diskDir})

	if len(errs) != 2 || errs[0].Line != 6 || errs[0].Path != "Path" || !strings.Contains(errs[0].Msg, "leads out of the datastore") ||
		errs[1].Line != 7 || errs[1].Path != "Firmware" || !strings.Contains(errs[1].Msg, `"coreboot" is not a firmware`) {
		t.Errorf("errors:\n%v", errs)
	}
	if errs[0].Col != strings.Index(strings.Split(string(data), "\n")[5], "[ds-prod01] ../")+1 {
		t.Errorf("the Path error's column is %d", errs[0].Col)
	}
	vdisk := filepath.Join(filepath.Dir(file), "RVTools_tabvDisk.csv")
	if w := set.Warnings; len(w) != 1 || w[0].File != vdisk || w[0].Line != 6 || w[0].Col != strings.Index(vdiskLine6(t, vdisk), "ds-prod01/broken")+1 || w[0].Path != "Disk Path" ||
		!strings.Contains(w[0].Msg, "ds-prod01/broken.vmdk") {
		t.Errorf("warnings: %v", set.Warnings)
	}

	it := itemNamed(t, set, "web01")
	if vm := it.Workload.Spec.VM; vm == nil || vm.Disk.Path != web || vm.Disk.Format != v1alpha1.DiskVMDK ||
		vm.Disk.Bus != "" || vm.Firmware != v1alpha1.FirmwareBIOS || vm.Network != nil {
		t.Errorf("web01: spec.vm %+v", vm)
	}
	if len(it.Notes) != 1 || !hasNote(it, "initramfs must hold virtio_blk") {
		t.Errorf("web01, whose disk is in place: notes %+v; want only the one on virtio drivers", it.Notes)
	}

	it = itemNamed(t, set, "dc02")
	want := filepath.Join(diskDir, "ds-prod02", "DC02", "DC02.vmdk")
	if vm := it.Workload.Spec.VM; vm == nil || vm.Disk.Path != want || vm.Disk.Bus != v1alpha1.DiskBusSATA ||
		vm.Firmware != v1alpha1.FirmwareUEFI || vm.Network == nil || vm.Network.Model != v1alpha1.NICE1000 {
		t.Errorf("dc02: spec.vm %+v", vm)
	}
	if !hasNote(it, "[ds-prod02] DC02/DC02.vmdk", "RVTools_tabvDisk.csv line 3", "is not at "+want, "DC02-flat.vmdk") ||
		!hasNote(it, "2 disks", "Hard disk 1") || !hasNote(it, "Windows", "virtio drivers") {
		t.Errorf("dc02: notes %+v", it.Notes)
	}
	if err := v1alpha1.ValidateWorkload(&it.Workload); len(err) > 0 {
		t.Errorf("dc02: %v", err)
	}

	it = itemNamed(t, set, "db01")
	if vm := it.Workload.Spec.VM; vm == nil || vm.Disk.Bus != v1alpha1.DiskBusSATA || vm.Firmware != v1alpha1.FirmwareUEFI ||
		vm.Network != nil || !strings.HasSuffix(vm.Disk.Path, "/ds-prod01/db01/db01.vmdk") {
		t.Errorf("db01: spec.vm %+v", vm)
	}

	it = itemNamed(t, set, "legacy-app")
	if vm := it.Workload.Spec.VM; vm == nil || vm.Disk.Path != filepath.Join(diskDir, "datastore1 (2)", "legacy app", "legacy app.vmdk") {
		t.Errorf("legacy app: spec.vm %+v", vm)
	}
	if len(set.Items) != 4 {
		t.Errorf("%d items, want 4", len(set.Items))
	}

	// A vDisk row's capacity sizes a VM whose vInfo row gives no disk size.
	noSize := strings.Replace(string(data), "\ndb01,poweredOn,False,False,green,db01.corp.example,connected,running,green,4,16384,1,2,307200,10.10.2.21,309248,201233,",
		"\ndb01,poweredOn,False,False,green,db01.corp.example,connected,running,green,4,16384,1,2,,10.10.2.21,,,", 1)
	set, _ = ImportWith(file, []byte(noSize), Options{DiskDir: diskDir})
	if d := itemNamed(t, set, "db01").Workload.Spec.Resources.Disk; d == nil || d.String() != "40Gi" {
		t.Errorf("db01 without a size in vInfo: resources.disk %v, want its boot disk's 40Gi", d)
	}

	// Without a disk directory, a disk is named in the daemon's images directory.
	set, _ = ImportWith(file, data, Options{})
	it = itemNamed(t, set, "web01")
	if vm := it.Workload.Spec.VM; vm == nil || vm.Disk.Path != "ds-dmz01/web01/web01.vmdk" {
		t.Errorf("web01 without a disk directory: spec.vm %+v", vm)
	}
	if !hasNote(it, "images directory", "--disk-dir") || it.Notes[0].Path != "Path" {
		t.Errorf("web01 without a disk directory: notes %+v", it.Notes)
	}
}

func vdiskLine6(t *testing.T, file string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(data), "\n")[5]
}

// TestVDiskAlone skips a vDisk sheet given as an input of its own.
func TestVDiskAlone(t *testing.T) {
	data, err := os.ReadFile("testdata/vdisk.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !Detect(data) {
		t.Fatal("a vDisk sheet is not detected")
	}
	set, errs := Import("vdisk.csv", data)
	if len(set.Items) != 0 || len(errs) != 0 || len(set.Skipped) != 1 || !strings.Contains(set.Skipped[0].Reason, "vInfo sheet beside it") {
		t.Errorf("items %d, errors %v, skipped %+v", len(set.Items), errs, set.Skipped)
	}
}

func TestParseDSPath(t *testing.T) {
	for in, want := range map[string]string{
		"[ds1] web01/web01.vmx":              "ds1|web01/web01.vmx",
		"  [datastore1 (2)]  a b/a b.vmdk  ": "datastore1 (2)|a b/a b.vmdk",
		"[ds1]web.vmdk":                      "ds1|web.vmdk",
		"ds1/web.vmdk":                       "",
		"[ds1 web.vmdk":                      "",
		"[] web/web.vmdk":                    "",
		"[ds1]":                              "",
		"[..] web/web.vmdk":                  "",
		"[a/b] web/web.vmdk":                 "",
		"[ds1] /etc/shadow":                  "",
		"[ds1] web/../../x.vmdk":             "",
		"[ds1] ..":                           "",
		"[ds1] web//web.vmdk":                "",
		`[ds1] web\web.vmdk`:                 "",
	} {
		p, err := parseDSPath(in)
		got := ""
		if err == nil {
			got = p.store + "|" + p.rel
		}
		if got != want {
			t.Errorf("parseDSPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestVDiskFile(t *testing.T) {
	for in, want := range map[string]string{
		"/x/RVTools_tabvInfo.csv": "/x/RVTools_tabvDisk.csv",
		"export/vinfo.csv":        "export/vdisk.csv",
		"VINFO.CSV":               "VDISK.CSV",
		"vinfo/inventory.csv":     "",
		"inventory.csv":           "",
	} {
		if got := vDiskFile(in); got != want {
			t.Errorf("vDiskFile(%q) = %q, want %q", in, got, want)
		}
	}
}

// utf16With encodes text as UTF-16 with a byte order mark.
func utf16With(text string, order binary.ByteOrder) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, order, uint16(0xFEFF))
	for _, u := range utf16.Encode([]rune(text)) {
		_ = binary.Write(&b, order, u)
	}
	return b.Bytes()
}

// TestUTF16 reads a UTF-16 export, with tabs or commas, as it reads the UTF-8 CSV.
func TestUTF16(t *testing.T) {
	data, err := os.ReadFile("testdata/vinfo.csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var tabs bytes.Buffer
	w := csv.NewWriter(&tabs)
	w.Comma, w.UseCRLF = '\t', true
	_ = w.WriteAll(recs)
	// A character outside the Basic Multilingual Plane takes a surrogate pair.
	withPair := strings.Replace(string(data), "\nDC01,", "\nDC01 \U0001F5A5,", 1)

	want, wantErrs := Import("vinfo.csv", []byte(withPair))
	wantJSON, _ := json.Marshal(want)
	for name, in := range map[string][]byte{
		"utf-16le commas":   utf16With(withPair, binary.LittleEndian),
		"utf-16be commas":   utf16With(withPair, binary.BigEndian),
		"utf-16le tabs":     utf16With(strings.Replace(tabs.String(), "\nDC01\t", "\nDC01 \U0001F5A5\t", 1), binary.LittleEndian),
		"utf-16le odd byte": append(utf16With(withPair, binary.LittleEndian), 0x0A),
	} {
		t.Run(name, func(t *testing.T) {
			if !Detect(in) {
				t.Fatal("not detected")
			}
			got, errs := Import("vinfo.csv", in)
			odd := strings.Contains(name, "odd")
			if odd != (len(got.Warnings) == 1) {
				t.Errorf("warnings: %v", got.Warnings)
			}
			got.Warnings = nil
			gotJSON, _ := json.Marshal(got)
			if !bytes.Equal(gotJSON, wantJSON) || len(errs) != len(wantErrs) {
				t.Errorf("differs from the UTF-8 import:\n%s\nwant\n%s\nerrors %v", gotJSON, wantJSON, errs)
			}
			if !strings.Contains(string(gotJSON), "\U0001F5A5") {
				t.Errorf("the surrogate pair was not decoded")
			}
		})
	}
}

// xlsx writes a small Excel workbook as Excel lays one out.
func xlsx(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for _, f := range []struct{ name, body string }{
		{"[Content_Types].xml", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>`},
		{"_rels/.rels", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`},
		{"xl/workbook.xml", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets><sheet name="vInfo" sheetId="1"/></sheets></workbook>`},
		{"xl/worksheets/sheet1.xml", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>`},
	} {
		fw, err := z.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write([]byte(f.body))
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestWorkbook says what to do with an .xlsx instead of reporting a syntax error.
func TestWorkbook(t *testing.T) {
	data := xlsx(t)
	if !Detect(data) {
		t.Fatal("a workbook is not detected")
	}
	set, errs := Import("RVTools_export_all.xlsx", data)
	if len(set.Items) != 0 || len(errs) != 1 ||
		errs[0].Error() != "RVTools_export_all.xlsx:1:1: an Excel workbook: save the vInfo sheet as CSV (File > Save As > CSV UTF-8)" {
		t.Errorf("errors: %v", errs)
	}
	if Detect([]byte("PK\x03\x04 some other zip")) {
		t.Error("a zip without a workbook is detected")
	}
}
