package qemu

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/extract"
	"strata.dev/strata/internal/runtime"
)

// Debian's ovmf package: UEFI firmware for x86-64 VMs, without Secure Boot, and the
// template of its variable store.
const (
	DefaultOVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	DefaultOVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// varsFile is an instance's own copy of the UEFI variable store.
const varsFile = "efivars.fd"

// diskFormat is the format of vm.disk: the one given, else the one its name suggests,
// else qcow2.
func diskFormat(disk *v1alpha1.Disk) v1alpha1.DiskFormat {
	return cmp.Or(disk.Format, v1alpha1.DiskFormatOf(disk.Path), v1alpha1.DiskQCOW2)
}

// qemuFormat is qemu-img's name of a disk format.
func qemuFormat(f v1alpha1.DiskFormat) string {
	if f == v1alpha1.DiskVHD {
		return "vpc"
	}
	return string(f)
}

// converted reports whether a disk of format f is converted to qcow2 before it boots:
// QEMU reads the other hypervisors' formats slowly, or not as an overlay's backing file.
func converted(f v1alpha1.DiskFormat) bool {
	switch f {
	case v1alpha1.DiskVMDK, v1alpha1.DiskVHD, v1alpha1.DiskVHDX, v1alpha1.DiskOVA:
		return true
	}
	return false
}

// bootDisk returns the image the instance's overlay is made over, and its qemu-img
// format: vm.disk itself when it is raw or qcow2, else its qcow2 conversion.
func (d *Driver) bootDisk(ctx context.Context, spec runtime.InstanceSpec) (string, string, error) {
	disk := spec.VM.Disk
	format := diskFormat(disk)
	if !converted(format) {
		return disk.Path, qemuFormat(format), d.checkDisk(ctx, spec.ID, disk.Path, qemuFormat(format))
	}
	if err := regularFile(disk.Path); err != nil {
		return "", "", fmt.Errorf("%w: instance %q: vm.disk: %w", runtime.ErrInvalid, spec.ID, err)
	}
	if format != v1alpha1.DiskOVA {
		if err := d.checkDisk(ctx, spec.ID, disk.Path, qemuFormat(format)); err != nil {
			return "", "", err
		}
	}
	p, err := d.convertedDisk(ctx, spec, disk.Path, format)
	if err != nil {
		return "", "", err
	}
	return p, string(v1alpha1.DiskQCOW2), nil
}

// convertedDisk returns the qcow2 conversion of src, making it the first time:
// StateDir/disks/<key>.qcow2, keyed by src's path, size and modification time, so that
// every later start (of any instance) uses it again, and a changed src is converted
// anew. src itself is only read.
func (d *Driver) convertedDisk(ctx context.Context, spec runtime.InstanceSpec, src string, format v1alpha1.DiskFormat) (string, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return "", fmt.Errorf("%w: instance %q: vm.disk: %w", runtime.ErrInvalid, spec.ID, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%d\n%d\n%s\n", src, fi.Size(), fi.ModTime().UnixNano(), format)
	dir := filepath.Join(d.cfg.StateDir, convertedDir)
	p := filepath.Join(dir, hex.EncodeToString(h.Sum(nil))[:32]+".qcow2")
	unlock := lockPath(p)
	defer unlock()
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	from, fromFormat := src, format
	if format == v1alpha1.DiskOVA {
		unpacked, err := os.MkdirTemp(dir, "ova-*.tmp")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(unpacked)
		if from, err = unpackOVA(src, unpacked, fi.Size()); err != nil {
			return "", fmt.Errorf("%w: instance %q: vm.disk %s: %w", runtime.ErrInvalid, spec.ID, src, err)
		}
		fromFormat = v1alpha1.DiskVMDK
		if err := d.checkDisk(ctx, spec.ID, from, qemuFormat(fromFormat)); err != nil {
			return "", err
		}
	}
	tmp := strings.TrimSuffix(p, ".qcow2") + ".tmp"
	defer os.Remove(tmp)
	progress := d.progress(spec, src, format)
	progress(0)
	tell(spec, fmt.Sprintf("converting vm.disk %s (%s, %d MiB) to qcow2 once; its progress is in the instance's log", src, format, fi.Size()>>20))
	began := time.Now()
	//nolint:gosec // arguments, never shell words
	cmd := exec.CommandContext(ctx, d.cfg.QEMUImg, "convert", "-p", "-f", qemuFormat(fromFormat), "-O", "qcow2", from, tmp)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("qemu-img convert: %w", err)
	}
	readProgress(out, progress)
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("%w: instance %q: vm.disk %s: convert it to qcow2: %s", runtime.ErrInvalid, spec.ID, src, firstLine(stderr.Bytes()))
	}
	if err := os.Rename(tmp, p); err != nil {
		return "", err
	}
	progress(100)
	took := time.Since(began).Round(time.Millisecond)
	d.log.Info("qemu driver: vm.disk converted", "id", spec.ID, "disk", src, "format", format, "qcow2", p, "took", took)
	tell(spec, fmt.Sprintf("converted vm.disk %s to qcow2 in %s; later starts use the copy", src, took))
	return p, nil
}

// tell reports a step of Start to whoever listens (InstanceSpec.Progress).
func tell(spec runtime.InstanceSpec, msg string) {
	if spec.Progress != nil {
		spec.Progress(msg)
	}
}

// convertedDir holds the qcow2 conversions of vmdk, vhd, vhdx and ova disks, in StateDir.
const convertedDir = "disks"

// progress returns a function that reports the conversion of src at a percentage: in
// the instance's log (what `strata logs` shows) and the daemon's, every tenth.
func (d *Driver) progress(spec runtime.InstanceSpec, src string, format v1alpha1.DiskFormat) func(int) {
	last := -1
	return func(pct int) {
		step := pct / 10 * 10
		if step <= last {
			return
		}
		last = step
		line := fmt.Sprintf("strata: converting vm.disk %s (%s) to qcow2: %d%%", src, format, step)
		d.log.Info("qemu driver: converting vm.disk", "id", spec.ID, "disk", src, "percent", step)
		if spec.LogPath == "" {
			return
		}
		f, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return
		}
		_, _ = fmt.Fprintln(f, line)
		_ = f.Close()
	}
}

// readProgress reads qemu-img's -p output, "    (42.17/100%)" lines ended by carriage
// returns, and calls report with each whole percentage.
func readProgress(r io.Reader, report func(int)) {
	sc := bufio.NewScanner(r)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		s, ok := strings.CutPrefix(s, "(")
		num, _, found := strings.Cut(s, "/100%")
		if !ok || !found {
			continue
		}
		if v, err := strconv.ParseFloat(num, 64); err == nil && v >= 0 && v <= 100 {
			report(int(v))
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// unpackOVA unpacks an OVA (a tar of an OVF descriptor and the disks it names) into dir,
// safely (package extract), and returns the disk the VM boots: the first the descriptor's
// disk section names. size bounds what the archive may unpack to.
func unpackOVA(src, dir string, size int64) (string, error) {
	f, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer f.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	if _, err := extract.Extract(f, root, extract.Options{MaxBytes: size}); err != nil {
		return "", fmt.Errorf("unpack the OVA: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var ovf string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.EqualFold(filepath.Ext(e.Name()), ".ovf") {
			if ovf != "" {
				return "", errors.New("the OVA holds more than one .ovf descriptor")
			}
			ovf = e.Name()
		}
	}
	if ovf == "" {
		return "", errors.New("the OVA holds no .ovf descriptor at its top")
	}
	data, err := root.ReadFile(ovf)
	if err != nil {
		return "", err
	}
	name, err := ovfBootDisk(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", ovf, err)
	}
	fi, err := root.Lstat(name)
	if err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s names the disk %q, which the OVA does not hold as a file", ovf, name)
	}
	return filepath.Join(dir, name), nil
}

// ovfEnvelope is the part of an OVF descriptor that says which files are disks.
type ovfEnvelope struct {
	Files []struct {
		ID   string `xml:"id,attr"`
		Href string `xml:"href,attr"`
	} `xml:"References>File"`
	Disks []struct {
		FileRef string `xml:"fileRef,attr"`
	} `xml:"DiskSection>Disk"`
}

// ovfBootDisk returns the file name of the first disk an OVF descriptor declares.
func ovfBootDisk(data []byte) (string, error) {
	var env ovfEnvelope
	if err := xml.Unmarshal(data, &env); err != nil {
		return "", fmt.Errorf("read the OVF descriptor: %w", err)
	}
	if len(env.Disks) == 0 {
		return "", errors.New("the OVF descriptor declares no disk (no DiskSection/Disk)")
	}
	ref := env.Disks[0].FileRef
	for _, f := range env.Files {
		if f.ID != ref {
			continue
		}
		if f.Href == "" || strings.ContainsAny(f.Href, "/\\") || f.Href == "." || f.Href == ".." {
			return "", fmt.Errorf("the first disk's file %q is not a file name in the OVA", f.Href)
		}
		if !strings.EqualFold(filepath.Ext(f.Href), ".vmdk") {
			return "", fmt.Errorf("the first disk's file %q is not a VMDK", f.Href)
		}
		return f.Href, nil
	}
	return "", fmt.Errorf("the first disk refers to file %q, which the References section does not list", ref)
}

// diskDevice attaches the node disk0 on the bus vm.disk asks for, as the boot disk. q35
// has an AHCI controller on board: a sata or ide disk is an AHCI disk.
func diskDevice(bus v1alpha1.DiskBus) []string {
	switch bus {
	case v1alpha1.DiskBusSATA, v1alpha1.DiskBusIDE:
		return []string{"-device", "ide-hd,drive=disk0,bus=ide.0,bootindex=1"}
	case v1alpha1.DiskBusSCSI:
		return []string{"-device", "virtio-scsi-pci,id=scsi0", "-device", "scsi-hd,drive=disk0,bus=scsi0.0,bootindex=1"}
	}
	return []string{"-device", "virtio-blk-pci,drive=disk0,bootindex=1"}
}

// nicDevice is the QEMU device of vm.network.model.
func nicDevice(vm *v1alpha1.VMSource) string {
	if vm.Network != nil {
		switch vm.Network.Model {
		case v1alpha1.NICE1000:
			return "e1000"
		case v1alpha1.NICE1000E:
			return "e1000e"
		}
	}
	return "virtio-net-pci"
}

// uefi returns the arguments that boot the instance with OVMF: the firmware, read-only,
// and the instance's own copy of the variable store.
func (d *Driver) uefi(id string) ([]string, error) {
	for _, f := range []string{d.cfg.OVMFCode, d.cfg.OVMFVars} {
		if err := regularFile(f); err != nil {
			return nil, fmt.Errorf("%w: instance %q: vm.firmware uefi needs OVMF (Debian's ovmf package; `make host-setup` installs it): %w",
				runtime.ErrUnsupported, id, err)
		}
	}
	vars, err := os.ReadFile(d.cfg.OVMFVars)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(d.path(id, varsFile), vars, 0o600); err != nil { //nolint:gosec // id passed runtime.ValidID: no separators
		return nil, err
	}
	return []string{
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + d.cfg.OVMFCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + d.path(id, varsFile),
	}, nil
}
