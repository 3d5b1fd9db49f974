package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime/qemu/qmptest"
	"strata.dev/strata/internal/testenv"
)

// TestBackupVMDiskIncremental: a disk VM's second backup reads only the 1 MiB blocks
// its guest wrote since the first (one whole, one in part); its QEMU ending cleanly
// keeps that record, so the next backup reads nothing; a QEMU killed loses it, and the
// next backup reads the whole disk, saying why. Each backup restores block for block.
func TestBackupVMDiskIncremental(t *testing.T) {
	e := newE2E(t)
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.Skipf(t, "skipping: %s not found (make host-setup)", bin)
		}
	}
	e.start()
	disk := filepath.Join(e.dir, "data", "images", "legacy.img")
	if err := os.MkdirAll(filepath.Dir(disk), 0o700); err != nil {
		t.Fatal(err)
	}
	bootDisk(t, disk)
	const size = 16 << 20
	if err := os.Truncate(disk, size); err != nil {
		t.Fatal(err)
	}
	// want is the disk as the guest sees it, kept in step with the writes below.
	want, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	e.applyDoc("legacy", fmt.Sprintf(`apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: legacy}
spec:
  vm: {disk: {path: %s, format: raw}}
  resources: {memory: 64Mi}
`, disk))
	qmp := filepath.Join(e.dir, "data", "vm", "legacy-0", "qmp.sock")
	boots := 0
	booted := func(what string) {
		t.Helper()
		boots++ // the console log keeps the earlier runs' lines
		e.eventually(what, 120*time.Second, func() error {
			if _, err := os.Stat(qmp); err != nil {
				return err
			}
			out, err := e.strata("logs", "legacy")
			if err == nil && strings.Count(out, bootLine) < boots {
				err = fmt.Errorf("console so far: %q", out)
			}
			if err == nil {
				_, err = e.running("legacy", 1)
			}
			return err
		})
	}
	booted("the legacy VM boots")
	e.must("repo", "init", "file://"+filepath.Join(e.dir, "repo"))

	write := func(pattern byte, off, n int64) {
		t.Helper()
		qmptest.HMP(t, qmp, fmt.Sprintf(`qemu-io -d %s "write -P 0x%x %d %d"`, qmptest.DiskDevice, pattern, off, n))
		copy(want[off:off+n], bytes.Repeat([]byte{pattern}, int(n)))
	}
	n := 0
	backup := func(what string, wantRead int64, warning string) {
		t.Helper()
		var b v1alpha1.Backup
		if err := json.Unmarshal([]byte(e.must("backup", "create", "legacy", "-o", "json")), &b); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes, %d unchanged, %d read, %d stored, warnings %q", what, b.Size, b.UnchangedBytes, b.ReadBytes, b.StoredBytes, b.Warnings)
		if b.Size != size || b.ReadBytes != wantRead || b.UnchangedBytes != size-wantRead {
			t.Errorf("%s: %d of %d bytes read, %d unchanged; want %d read of %d", what, b.ReadBytes, b.Size, b.UnchangedBytes, wantRead, size)
		}
		if got := strings.Join(b.Warnings, "\n"); (warning == "") != (got == "") || !strings.Contains(got, warning) {
			t.Errorf("%s: warnings %q, want %q", what, got, warning)
		}
		n++
		as := "legacy-r" + strconv.Itoa(n)
		e.must("restore", b.ID, "--as", as)
		restored := filepath.Join(e.dir, "data", "disks", as, "0", "disk.qcow2")
		ref := filepath.Join(e.dir, "want.img")
		if err := os.WriteFile(ref, want, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("qemu-img", "compare", "-U", "-f", "qcow2", "-F", "raw", restored, ref).CombinedOutput(); err != nil {
			t.Errorf("%s: the restored disk differs from the guest's: %v\n%s", what, err, out)
		}
		e.deleteGone(as)
	}

	backup("first backup", size, "")
	write(0xab, 3<<20+64<<10, 64<<10) // a part of the block at 3 MiB
	write(0xcd, 9<<20, 1<<20)         // the whole block at 9 MiB
	backup("after writes in two blocks", 2<<20, "")

	// Power-off ends QEMU cleanly: it saves the record, and the VM's next run goes on with it.
	restarted := func(what string, old int) {
		t.Helper()
		e.eventually(what, 120*time.Second, func() error {
			if p := qmptest.PID(qmp); p == 0 || p == old {
				return fmt.Errorf("no new QEMU yet")
			}
			return nil
		})
		booted(what)
	}
	pid := qmptest.PID(qmp)
	qmptest.HMP(t, qmp, "quit")
	restarted("the VM runs again after a power-off", pid)
	backup("after a clean restart", 0, "")

	// A killed QEMU cannot save the record: the whole disk is read, and the backup says why.
	pid = qmptest.PID(qmp)
	if pid <= 0 {
		t.Fatalf("no QEMU serves %s", qmp)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	restarted("the VM runs again after a kill", pid)
	write(0xef, 5<<20, 4<<10)
	backup("after QEMU was killed", size, "the whole disk was read")
}
