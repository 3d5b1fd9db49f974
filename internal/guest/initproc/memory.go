package initproc

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
)

// reportingOrder is the smallest free block, as a power of two of pages, that
// the guest kernel hands back to the host through the balloon's free page
// reporting: order 5, 128 KiB.
//
// The kernel reports a zone's free blocks only while the zone has 32 blocks
// of the reporting order free beyond its low watermark. Its default order is
// a page block (2 or 4 MiB), so a zone needs 64 to 128 MiB free before it
// reports anything, and a 128 MiB guest never does: what its kernel touched
// while booting (the unpacked kernel and initramfs) stays in QEMU's resident
// memory. At order 5 the zone needs 4 MiB.
const reportingOrder = 5

// reportingOrderParam is the kernel's knob for the order; the balloon driver
// sets it when it registers, so it is written after the modules are loaded.
var reportingOrderParam = "/sys/module/page_reporting/parameters/page_reporting_order"

// lowerReportingOrder sets the free page reporting order to reportingOrder. A
// kernel without free page reporting has no such knob, which is not an error.
func lowerReportingOrder() error {
	f, err := os.OpenFile(reportingOrderParam, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strconv.Itoa(reportingOrder) + "\n"); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
