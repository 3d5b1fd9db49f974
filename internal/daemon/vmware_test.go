package daemon_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/importer"
	"strata.dev/strata/internal/testenv"
)

// vmdkMessage is what the init of the VMDK's guest prints on its console.
const vmdkMessage = "vmdk-guest: init runs from the imported disk"

// initramfs returns a gzip'd newc cpio archive holding a static busybox and an /init
// script.
func initramfs(t *testing.T, script string) []byte {
	t.Helper()
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testenv.Skipf(t, "skipping: a static busybox is needed for the test guest (install busybox-static): %v", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	ino := 0
	add := func(name string, mode int, data []byte) {
		ino++
		var entry bytes.Buffer
		fmt.Fprintf(&entry, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\x00",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0, name)
		entry.Write(make([]byte, (4-(110+len(name)+1)%4)%4))
		entry.Write(data)
		entry.Write(make([]byte, (4-len(data)%4)%4))
		if _, err := zw.Write(entry.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	add("bin", 0o40755, nil)
	add("bin/busybox", 0o100755, busybox)
	add("init", 0o100755, []byte("#!/bin/busybox sh\n"+script))
	add("TRAILER!!!", 0, nil)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bootableDisk makes a BIOS-bootable raw disk at path: a FAT filesystem over the whole
// disk (a superfloppy) holding the guest kernel, an initramfs whose init prints
// vmdkMessage, and SYSLINUX, which loads them; no mount is needed.
func bootableDisk(t *testing.T, kernel guest.Kernel, path string) {
	t.Helper()
	for _, bin := range []string{"mkfs.fat", "mcopy", "syslinux"} {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.Skipf(t, "skipping: %s not found (install dosfstools, mtools and syslinux: make host-setup)", bin)
		}
	}
	dir := t.TempDir()
	files := map[string][]byte{
		"initrd.gz": initramfs(t, "/bin/busybox echo "+vmdkMessage+"\nwhile :; do /bin/busybox sleep 3600; done\n"),
		"syslinux.cfg": []byte("SERIAL 0 115200\nDEFAULT linux\nTIMEOUT 0\nLABEL linux\n" +
			"  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttyS0 panic=-1\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 48<<20); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"mkfs.fat", "-n", "VMDKBOOT", path},
		{"mcopy", "-i", path, kernel.Vmlinuz, "::/vmlinuz"},
		{"mcopy", "-i", path, filepath.Join(dir, "initrd.gz"), filepath.Join(dir, "syslinux.cfg"), "::/"},
		{"syslinux", "--install", path},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
}

// TestDaemonVMwareDisk boots a VMware VM from its inventory: a bootable disk converted
// to a streamOptimized VMDK in a copy of its datastore, a vInfo row naming the VM's
// configuration file, imported with the datastores' directory, applied to the daemon,
// converted to qcow2 on the first start (with progress in the instance's log, and its
// start and end among the events describe shows) and booted: its init's line reaches
// `strata logs`. The VMDK is left as it was.
func TestDaemonVMwareDisk(t *testing.T) {
	e := newE2E(t)
	kdir := vmEnv(t, e)
	kernel, err := guest.FindKernel(kdir)
	if err != nil {
		t.Fatal(err)
	}
	datastores := filepath.Join(e.dir, "datastores")
	vmdk := filepath.Join(datastores, "ds-lab01", "vmdkboot", "vmdkboot.vmdk")
	if err := os.MkdirAll(filepath.Dir(vmdk), 0o700); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(e.dir, "vmdkboot.img")
	bootableDisk(t, kernel, raw)
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	before, err := os.ReadFile(vmdk)
	if err != nil {
		t.Fatal(err)
	}

	vinfo := "VM,Powerstate,Template,CPUs,Memory,Provisioned MiB,Firmware,Path,OS according to the configuration file,OS according to the VMware Tools\r\n" +
		"vmdkboot,poweredOn,False,1,256,48,bios,[ds-lab01] vmdkboot/vmdkboot.vmx,Debian GNU/Linux 12 (64-bit),Debian GNU/Linux 12 (bookworm)\r\n"
	set, errs := importer.FileWith("RVTools_tabvInfo.csv", []byte(vinfo), importer.Options{DiskDir: datastores})
	if len(errs) > 0 || len(set.Items) != 1 {
		t.Fatalf("import: %d items, %v", len(set.Items), errs)
	}
	w := set.Items[0].Workload
	if w.Spec.VM == nil || w.Spec.VM.Disk.Path != vmdk || len(set.Items[0].Notes) != 1 {
		t.Fatalf("imported spec.vm %+v, notes %+v", w.Spec.VM, set.Items[0].Notes)
	}
	w.TypeMeta = v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindWorkload}
	doc, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	docFile := filepath.Join(e.dir, "vmdkboot.json")
	if err := os.WriteFile(docFile, doc, 0o600); err != nil {
		t.Fatal(err)
	}

	e.extraArgs = []string{"--guest-kernel-dir", kdir, "--vm-image-dir", datastores}
	e.start()
	e.must("apply", "-f", docFile)
	e.eventually("the VM's init on its console", 180*time.Second, func() error {
		logs, err := e.strata("logs", "vmdkboot")
		if err != nil {
			return err
		}
		if !strings.Contains(logs, vmdkMessage) {
			return fmt.Errorf("not in the logs yet; their tail:\n%s", tail(logs, 8))
		}
		return nil
	})
	if st := e.workload("vmdkboot").Status; st == nil || st.Tier != v1alpha1.TierVM {
		t.Errorf("status %+v, want the vm tier", st)
	}
	logs := e.must("logs", "vmdkboot")
	if !strings.Contains(logs, "strata: converting vm.disk "+vmdk+" (vmdk) to qcow2: 100%") || !strings.Contains(logs, "SYSLINUX") {
		t.Errorf("the log lacks the conversion's progress or the boot loader:\n%s", tail(logs, 40))
	}
	if out := e.must("describe", "workload", "vmdkboot"); !strings.Contains(out, "converting vm.disk "+vmdk) || !strings.Contains(out, "converted vm.disk") {
		t.Errorf("describe does not show the conversion among the events:\n%s", out)
	}
	serve, _ := os.ReadFile(filepath.Join(e.dir, "serve.log"))
	if !bytes.Contains(serve, []byte("vm.disk converted")) {
		t.Errorf("the daemon log does not report the conversion")
	}
	after, err := os.ReadFile(vmdk)
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the VMDK changed (%v)", err)
	}
	e.must("delete", "-f", docFile)
	e.stop()
}
