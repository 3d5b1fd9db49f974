package rvtools

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/inventory"
)

// dsPath is a file on a VMware datastore: "[ds1] web01/web01.vmdk".
type dsPath struct {
	store string // ds1
	rel   string // web01/web01.vmdk, slash-separated, clean, inside the datastore
}

func (p dsPath) String() string { return "[" + p.store + "] " + p.rel }

// local is where the file is in a copy of the datastores: dir/ds1/web01/web01.vmdk.
func (p dsPath) local(dir string) string {
	return filepath.Join(dir, p.store, filepath.FromSlash(p.rel))
}

// parseDSPath reads a datastore path. It refuses what would lead out of the datastore's
// directory once copied: "..", an absolute path, a datastore name with a separator.
func parseDSPath(s string) (dsPath, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "[")
	store, rel, found := strings.Cut(rest, "]")
	if !ok || !found {
		return dsPath{}, fmt.Errorf("%q is not a datastore path such as [ds1] web01/web01.vmx", s)
	}
	store, rel = strings.TrimSpace(store), strings.TrimSpace(rel)
	switch {
	case store == "":
		return dsPath{}, fmt.Errorf("%q names no datastore between the brackets", s)
	case store == "." || store == ".." || strings.ContainsAny(store, "/\\\x00"):
		return dsPath{}, fmt.Errorf("the datastore name %q cannot be a directory name", store)
	case rel == "":
		return dsPath{}, fmt.Errorf("%q names no file after the datastore", s)
	case strings.ContainsAny(rel, "\\\x00"):
		return dsPath{}, fmt.Errorf("%q has a backslash or NUL byte in its file name", s)
	}
	if clean := path.Clean(rel); clean != rel || path.IsAbs(rel) || clean == ".." || strings.HasPrefix(clean, "../") {
		return dsPath{}, fmt.Errorf("%q leads out of the datastore or is not a clean path", s)
	}
	return dsPath{store: store, rel: rel}, nil
}

// vDisk is one row of a vDisk sheet.
type vDisk struct {
	label      string // Hard disk 1
	path       dsPath
	capacity   int64 // MiB; 0 when not given
	controller string
	line       int
}

// number is the N of "Hard disk N", for ordering; large when there is none.
func (d vDisk) number() int {
	f := strings.Fields(d.label)
	if len(f) > 0 {
		if n, err := strconv.Atoi(f[len(f)-1]); err == nil {
			return n
		}
	}
	return 1 << 30
}

// vDiskFile returns the name of the vDisk sheet exported beside a vInfo sheet: RVTools
// names its CSV exports RVTools_tabvInfo.csv, RVTools_tabvDisk.csv and so on. It returns
// "" when file's name does not say vInfo.
func vDiskFile(file string) string {
	dir, base := filepath.Split(file)
	i := strings.Index(strings.ToLower(base), "vinfo")
	if i < 0 {
		return ""
	}
	word := base[i : i+len("vinfo")]
	var repl string
	switch word {
	case "vInfo":
		repl = "vDisk"
	case "VINFO":
		repl = "VDISK"
	default:
		repl = "vdisk"
	}
	return dir + base[:i] + repl + base[i+len(word):]
}

// isVDisk reports whether a header row is a vDisk sheet's rather than a vInfo sheet's.
func isVDisk(c columns) bool {
	return c.index[colDisk] >= 0 && c.index[colCPUs] < 0 && c.index[colMemory] < 0 &&
		(c.index[colDiskPath] >= 0 || c.index[colCapacity] >= 0 || c.index[colController] >= 0)
}

// readVDisk reads a vDisk sheet: each VM's disks, by VM name. What it cannot read is
// returned as warnings; the vInfo import goes on without those disks.
func readVDisk(file string, data []byte) (map[string][]vDisk, diag.List) {
	if isWorkbook(data) {
		return nil, diag.List{diag.Errorf(file, 1, 1, "", "an Excel workbook: save the vDisk sheet as CSV (File > Save As > CSV UTF-8)")}
	}
	data, _ = utf8Text(data)
	h, ok := findHeader(data)
	if !ok {
		return nil, diag.List{diag.Errorf(file, 1, 0, "", "the vDisk sheet has no header row").
			WithHint("export the vDisk sheet of RVTools as CSV with its header row")}
	}
	r := csv.NewReader(bytes.NewReader(h.rest))
	r.Comma, r.FieldsPerRecord = h.comma, -1
	fields, err := r.Read()
	if err != nil {
		return nil, diag.List{diag.Errorf(file, h.line, 0, "", "read the vDisk sheet: %v", err)}
	}
	cols := mapColumns(fields)
	pathCol := colDiskPath
	if cols.index[pathCol] < 0 {
		pathCol = colPath
	}
	if cols.index[colVM] < 0 || cols.index[pathCol] < 0 {
		return nil, diag.List{diag.Errorf(file, h.line, 1, "", "the vDisk sheet has no VM or Disk Path column; it has %s", quoteList(cols.names)).
			WithHint("export the vDisk sheet of RVTools with its VM, Disk, Disk Path, Capacity MiB and Controller columns")}
	}
	cell := func(rec []string, c column) string {
		if i := cols.index[c]; i >= 0 && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	at := func(c column) (int, int) {
		line, col := r.FieldPos(max(cols.index[c], 0))
		return h.abs(line, col)
	}
	disks := map[string][]vDisk{}
	var warns diag.List
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, col := 0, 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line, col = h.abs(pe.Line, pe.Column)
			}
			warns = append(warns, diag.Errorf(file, line, col, "", "CSV syntax: %v; the rest of the vDisk sheet is not read", err))
			break
		}
		vm, raw := cell(rec, colVM), cell(rec, pathCol)
		if vm == "" || raw == "" {
			continue
		}
		line, col := at(pathCol)
		p, err := parseDSPath(raw)
		if err != nil {
			warns = append(warns, diag.Errorf(file, line, col, cols.names[cols.index[pathCol]], "%v; the disk is left out", err).
				WithHint("RVTools writes a disk's path as [datastore] folder/disk.vmdk"))
			continue
		}
		d := vDisk{label: cell(rec, colDisk), path: p, controller: cell(rec, colController), line: line}
		if c := cell(rec, colCapacity); c != "" {
			if n, err := parseNumber(c, true); err == nil && n > 0 {
				d.capacity = n
			}
		}
		disks[vm] = append(disks[vm], d)
	}
	for vm := range disks {
		slices.SortStableFunc(disks[vm], func(a, b vDisk) int { return cmp.Compare(a.number(), b.number()) })
	}
	return disks, warns
}

// loadVDisk reads the vDisk sheet beside the vInfo sheet, if there is one.
func (im *importer) loadVDisk() {
	name := vDiskFile(im.file)
	if name == "" || name == im.file {
		return
	}
	data, err := os.ReadFile(name)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			im.set.Warnings = append(im.set.Warnings, diag.Errorf(name, 0, 0, "", "read the vDisk sheet: %v", err).
				WithHint("VMs get their disk paths from the vInfo sheet's Path column instead"))
		}
		return
	}
	var warns diag.List
	im.vdisks, warns = readVDisk(name, data)
	im.vdiskFile = name
	im.set.Warnings = append(im.set.Warnings, warns...)
}

// bus is the disk bus of a VMware controller name, "" when it names none strata has.
func bus(controller string) v1alpha1.DiskBus {
	c := strings.ToLower(controller)
	switch {
	case strings.Contains(c, "sata"):
		return v1alpha1.DiskBusSATA
	case strings.Contains(c, "scsi"):
		return v1alpha1.DiskBusSCSI
	case strings.Contains(c, "ide"):
		return v1alpha1.DiskBusIDE
	}
	return ""
}

// vm fills spec.vm: the VM's boot disk (from the vDisk sheet, else from the configuration
// file's path in the vInfo sheet), its firmware and the devices its guest can boot with.
// What the inventory does not say, or what must be done by hand, becomes a note.
func (r *row) vm(w *v1alpha1.Workload, vmName string) {
	firmware := r.firmware()
	var boot *vDisk
	disks := r.im.vdisks[vmName]
	if len(disks) > 0 {
		boot = &disks[0]
	} else if vmx := r.cell(colPath); vmx != "" {
		p, err := parseDSPath(vmx)
		if err == nil && !strings.EqualFold(path.Ext(p.rel), ".vmx") {
			err = fmt.Errorf("%q does not name a .vmx file", vmx)
		}
		if err != nil {
			r.fail(colPath, err.Error(), "RVTools writes the VM's configuration file as [datastore] folder/vm.vmx")
			return
		}
		p.rel = strings.TrimSuffix(p.rel, path.Ext(p.rel)) + ".vmdk"
		boot = &vDisk{path: p}
	}
	if boot == nil {
		r.note(0, "", "the inventory names no disk for this VM (no Path column, no vDisk sheet): "+
			"copy its boot disk and set spec.vm.disk.path to the copy")
		return
	}
	vm := &v1alpha1.VMSource{Firmware: firmware, Disk: &v1alpha1.Disk{Format: v1alpha1.DiskVMDK, Bus: bus(boot.controller)}}
	if dir := r.im.opts.DiskDir; dir != "" {
		vm.Disk.Path = boot.path.local(dir)
		if _, err := os.Stat(vm.Disk.Path); err != nil {
			r.note(0, r.diskField(boot), fmt.Sprintf("the disk %s%s is not at %s: copy it there from datastore %s%s",
				boot.path, r.diskSource(boot), vm.Disk.Path, boot.path.store, flatNote(boot.path)))
		}
	} else {
		vm.Disk.Path = boot.path.store + "/" + boot.path.rel
		r.note(0, r.diskField(boot), fmt.Sprintf("the disk %s%s is read from %s in the daemon's images directory: copy it there from datastore %s%s, "+
			"or import with a disk directory that holds copies of the datastores (--disk-dir)", boot.path, r.diskSource(boot), vm.Disk.Path, boot.path.store, flatNote(boot.path)))
	}
	if w.Spec.Resources.Disk == nil && boot.capacity > 0 && boot.capacity <= maxMiB {
		// The vInfo sheet gave no size: the boot disk's is the least the VM needs.
		w.Spec.Resources.Disk = resource.NewQuantity(boot.capacity<<20, resource.BinarySI)
	}
	if len(disks) > 1 {
		r.note(0, "", fmt.Sprintf("the VM has %d disks; it boots %s (%s) and the others are not attached: "+
			"a strata VM has one disk, so move their data onto it or into volumes of other workloads", len(disks), cmp.Or(boot.label, "the first"), boot.path))
	}
	switch {
	case w.Spec.Traits.OS == v1alpha1.OSWindows:
		vm.Disk.Bus = v1alpha1.DiskBusSATA
		vm.Network = &v1alpha1.VMNetwork{Model: v1alpha1.NICE1000}
		r.note(0, "", "a Windows guest has no virtio drivers as installed: it boots from a SATA disk with an e1000 network device; "+
			"install the virtio drivers (virtio-win) in the guest, then set spec.vm.disk.bus and spec.vm.network.model to virtio for speed")
	case vm.Disk.Bus == "" || vm.Disk.Bus == v1alpha1.DiskBusSCSI:
		driver := map[v1alpha1.DiskBus]string{"": "virtio_blk", v1alpha1.DiskBusSCSI: "virtio_scsi"}[vm.Disk.Bus]
		r.note(0, "", fmt.Sprintf("the guest boots from a virtio disk: its initramfs must hold %s, and one built only for VMware's "+
			"controllers (vmw_pvscsi, mptspi) does not; add it in the guest before copying the disk (dracut --add-drivers %s -f, "+
			"or update-initramfs -u with the module listed), or set spec.vm.disk.bus to sata", driver, driver))
	}
	w.Spec.VM = vm
}

// diskField is the vInfo column a disk's path came from, for notes: none for a disk of
// the vDisk sheet.
func (r *row) diskField(d *vDisk) string {
	if d.line > 0 {
		return ""
	}
	return r.im.cols.names[r.im.cols.index[colPath]]
}

// diskSource says where a disk of the vDisk sheet was read, for notes.
func (r *row) diskSource(d *vDisk) string {
	if d.line == 0 {
		return ""
	}
	return fmt.Sprintf(" (%s line %d)", r.im.vdiskFile, d.line)
}

// flatNote mentions the data file of a VMDK, which a datastore keeps beside its descriptor.
func flatNote(p dsPath) string {
	if !strings.EqualFold(path.Ext(p.rel), ".vmdk") {
		return ""
	}
	return fmt.Sprintf(" (with %s-flat.vmdk beside it, if the datastore has one)", path.Base(strings.TrimSuffix(p.rel, path.Ext(p.rel))))
}

// firmware reads the Firmware column: bios or efi.
func (r *row) firmware() v1alpha1.Firmware {
	switch v := r.cell(colFirmware); strings.ToLower(v) {
	case "":
		return ""
	case "bios":
		return v1alpha1.FirmwareBIOS
	case "efi", "uefi":
		return v1alpha1.FirmwareUEFI
	default:
		r.fail(colFirmware, fmt.Sprintf("%q is not a firmware", v), "RVTools writes bios or efi")
	}
	return ""
}

// note remarks on the item being imported.
func (r *row) note(line int, field, msg string) {
	r.notes = append(r.notes, inventory.Note{Line: line, Path: field, Message: msg})
}
