// Package rvtools imports VMware vSphere inventories exported by RVTools: the vInfo sheet
// saved as CSV, one row per VM, and the vDisk sheet beside it when there is one.
//
// Each VM becomes one Workload with isolation auto: it has no OCI image (imageAvailable is
// false), so assessment will place it in the vm tier. Its CPUs, memory and disk become
// spec.resources, its guest OS becomes traits.os and traits.osVersion (see package
// osrelease), a powered-off VM gets zero replicas, and templates are skipped. The
// Annotation column may carry strata traits as text: strata.dev/trust=untrusted,
// strata.dev/data: regulated, strata.dev/tenancy=multi, strata.dev/tenant=shop.
//
// # Disks
//
// spec.vm.disk names the VM's boot disk. The vDisk sheet, when RVTools exported one
// beside the vInfo sheet (RVTools_tabvDisk.csv beside RVTools_tabvInfo.csv: the name
// with vInfo replaced by vDisk), gives each disk's datastore path ("Disk Path") and
// controller; the VM boots its lowest-numbered disk, on the controller's bus (SATA, SCSI
// or IDE), and its other disks are named in a note. Without a vDisk sheet the disk is the
// configuration file's path (the vInfo "Path" column) with .vmx replaced by .vmdk. A
// datastore path "[ds1] web01/web01.vmdk" is DiskDir/ds1/web01/web01.vmdk with
// Options.DiskDir, and ds1/web01/web01.vmdk (in the daemon's images directory) without;
// a note says which file to copy where when it is not there. The Firmware column (bios,
// efi) becomes spec.vm.firmware (bios, uefi). A Windows guest, which has no virtio
// drivers as installed, boots from a SATA disk with an e1000 network device, with a note
// on the virtio drivers. A VM whose inventory names no disk gets no spec.vm, and a note.
//
// # Reading
//
// Columns are found by name in any order; the delimiter is ',', ';' or tab, as the header
// line uses it. The text is UTF-8 (with or without a byte order mark) or UTF-16 with a
// byte order mark (Excel's "Unicode Text"). An Excel workbook (.xlsx) is not read: the
// error says to save the vInfo sheet as CSV. A vDisk sheet given as an input of its own
// is skipped: it is read with its vInfo sheet.
package rvtools
