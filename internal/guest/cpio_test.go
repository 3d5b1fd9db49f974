package guest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/internal/testenv"
)

// cpioEntry is one entry read back from a newc archive.
type cpioEntry struct {
	name       string
	ino, mode  uint32
	uid, gid   uint32
	nlink      uint32
	mtime      uint32
	rmaj, rmin uint32
	data       []byte
}

// readCpio parses a gzip'd newc archive, or several concatenated, as the
// kernel does, checking the format's padding on the way.
func readCpio(t *testing.T, archive []byte) []cpioEntry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr) // reads concatenated gzip members too
	if err != nil {
		t.Fatal(err)
	}
	var out []cpioEntry
	for off := 0; off < len(raw); {
		if len(raw)-off < 110 || string(raw[off:off+6]) != "070701" {
			t.Fatalf("offset %d: no newc header", off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(raw[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("offset %d field %d: %v", off, i, err)
			}
			return uint32(v)
		}
		e := cpioEntry{ino: field(0), mode: field(1), uid: field(2), gid: field(3), nlink: field(4),
			mtime: field(5), rmaj: field(9), rmin: field(10)}
		size, namesize := int(field(6)), int(field(11))
		nameEnd := off + 110 + namesize
		if raw[nameEnd-1] != 0 {
			t.Fatalf("offset %d: name is not NUL-terminated", off)
		}
		e.name = string(raw[off+110 : nameEnd-1])
		dataStart := align4(nameEnd)
		e.data = raw[dataStart : dataStart+size]
		off = align4(dataStart + size)
		if e.name == cpioTrailer {
			// Another archive may follow (the kernel skips zero padding).
			for off < len(raw) && raw[off] == 0 {
				off++
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

func align4(n int) int { return (n + 3) &^ 3 }

// fakeKernel lays out a kernel package under a temp dir: an image and a
// few module files, some of them not in Modules.
func fakeKernel(t *testing.T) Kernel {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"boot/vmlinuz-6.1.0-9-test":                                        "kernel image",
		"lib/modules/6.1.0-9-test/kernel/drivers/virtio/virtio.ko":         "virtio module",
		"lib/modules/6.1.0-9-test/kernel/drivers/virtio/virtio_ring.ko":    "ring module",
		"lib/modules/6.1.0-9-test/kernel/drivers/block/virtio_blk.ko":      "blk module",
		"lib/modules/6.1.0-9-test/kernel/drivers/net/virtio_net.ko.xz":     "net module",
		"lib/modules/6.1.0-9-test/kernel/drivers/input/mousedev.ko":        "not wanted",
		"lib/modules/6.1.0-9-test/kernel/drivers/char/virtio_console.ko.x": "not a module",
		"lib/modules/6.1.0-9-test/modules.order":                           "kernel/drivers/virtio/virtio.ko\n",
	}
	writeFiles(t, dir, files)
	k, err := FindKernel(dir)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeInit(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "strata-guest")
	if err := os.WriteFile(p, []byte(content), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildInitramfsLayout(t *testing.T) {
	k := fakeKernel(t)
	var buf bytes.Buffer
	if err := BuildInitramfs(&buf, k, writeInit(t, "#!init")); err != nil {
		t.Fatal(err)
	}
	entries := readCpio(t, buf.Bytes())
	want := []struct {
		name string
		mode uint32
		data string
	}{
		{"dev", 0o040755, ""},
		{"dev/console", 0o020600, ""},
		{"init", 0o100755, "#!init"},
		{"lib", 0o040755, ""},
		{"lib/modules", 0o040755, ""},
		{"lib/modules/6.1.0-9-test", 0o040755, ""},
		{"lib/modules/6.1.0-9-test/kernel", 0o040755, ""},
		{"lib/modules/6.1.0-9-test/kernel/drivers", 0o040755, ""},
		{"lib/modules/6.1.0-9-test/kernel/drivers/block", 0o040755, ""},
		{"lib/modules/6.1.0-9-test/kernel/drivers/block/virtio_blk.ko", 0o100644, "blk module"},
		{"lib/modules/6.1.0-9-test/kernel/drivers/net", 0o040755, ""},
		{"lib/modules/6.1.0-9-test/kernel/drivers/net/virtio_net.ko.xz", 0o100644, "net module"},
		{"lib/modules/6.1.0-9-test/kernel/drivers/virtio", 0o040755, ""},
		{"lib/modules/6.1.0-9-test/kernel/drivers/virtio/virtio.ko", 0o100644, "virtio module"},
		{"lib/modules/6.1.0-9-test/kernel/drivers/virtio/virtio_ring.ko", 0o100644, "ring module"},
		{"newroot", 0o040755, ""},
		{"proc", 0o040755, ""},
		{"run", 0o040755, ""},
		{"sys", 0o040755, ""},
	}
	if len(entries) != len(want) {
		for _, e := range entries {
			t.Logf("entry %s %o", e.name, e.mode)
		}
		t.Fatalf("got %d entries, want %d", len(entries), len(want))
	}
	for i, w := range want {
		e := entries[i]
		if e.name != w.name || e.mode != w.mode || string(e.data) != w.data {
			t.Errorf("entry %d = %s %o %q, want %s %o %q", i, e.name, e.mode, e.data, w.name, w.mode, w.data)
		}
		if e.ino != uint32(i+1) || e.uid != 0 || e.gid != 0 || e.mtime != 0 {
			t.Errorf("entry %s: ino %d uid %d gid %d mtime %d, want ino %d and zeros", e.name, e.ino, e.uid, e.gid, e.mtime, i+1)
		}
	}
	if c := entries[1]; c.rmaj != 5 || c.rmin != 1 {
		t.Errorf("dev/console is %d:%d, want 5:1", c.rmaj, c.rmin)
	}
}

func TestBuildInitramfsIsReproducible(t *testing.T) {
	k := fakeKernel(t)
	initBin := writeInit(t, "#!init")
	build := func() []byte {
		var buf bytes.Buffer
		if err := BuildInitramfs(&buf, k, initBin); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	first := build()
	// Other times and modes on the inputs change nothing.
	later := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, p := range []string{initBin, filepath.Join(k.ModulesDir, "kernel/drivers/virtio/virtio.ko")} {
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if second := build(); !bytes.Equal(first, second) {
		t.Fatalf("two builds from the same inputs differ (%d and %d bytes)", len(first), len(second))
	}
	// The gzip header names no file and no time.
	zr, err := gzip.NewReader(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header has name %q and time %v, want neither", zr.Name, zr.ModTime)
	}
}

func TestBuildInitramfsErrors(t *testing.T) {
	k := fakeKernel(t)
	var buf bytes.Buffer
	if err := BuildInitramfs(&buf, k, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing init binary was accepted")
	}
	if err := os.Remove(filepath.Join(k.ModulesDir, "kernel/drivers/block/virtio_blk.ko")); err != nil {
		t.Fatal(err)
	}
	if err := BuildInitramfs(&buf, k, writeInit(t, "x")); err == nil {
		t.Error("a kernel without virtio_blk was accepted")
	}
}

func TestConfigArchive(t *testing.T) {
	c := Config{Args: []string{"sh"}, Root: RootFS{Device: "/dev/vda", FSType: "ext4"}, Hostname: "web-0"}
	archive, err := ConfigArchive(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ConfigArchive(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(archive, again) {
		t.Error("the config archive is not reproducible")
	}
	entries := readCpio(t, archive)
	if len(entries) != 2 || entries[0].name != "strata" || entries[1].name != "strata/config.json" {
		t.Fatalf("entries = %v, want strata and strata/config.json", entries)
	}
	want, _ := c.Marshal()
	if got := entries[1]; string(got.data) != string(want) || got.mode != 0o100600 {
		t.Errorf("config.json = %o %q, want %o %q", got.mode, got.data, 0o100600, want)
	}

	// Appended to a base archive, both unpack in order.
	var base bytes.Buffer
	if err := BuildInitramfs(&base, fakeKernel(t), writeInit(t, "x")); err != nil {
		t.Fatal(err)
	}
	all := readCpio(t, append(base.Bytes(), archive...))
	if last := all[len(all)-1]; last.name != "strata/config.json" {
		t.Errorf("last entry of the concatenation is %s", last.name)
	}

	if _, err := ConfigArchive(Config{}); err == nil {
		t.Error("an invalid config was archived")
	}
}

func TestCpioPadding(t *testing.T) {
	// Names and data of every length modulo 4 keep headers aligned.
	var buf bytes.Buffer
	cw := &cpioWriter{w: &buf}
	for i := range 8 {
		data := bytes.Repeat([]byte{'x'}, i)
		cw.file(fmt.Sprintf("f%s", bytes.Repeat([]byte{'n'}, i)), 0o644, int64(i), bytes.NewReader(data))
	}
	if err := cw.close(); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(buf.Bytes())
	_ = zw.Close()
	entries := readCpio(t, gz.Bytes())
	if len(entries) != 8 {
		t.Fatalf("read %d entries, want 8", len(entries))
	}
	for i, e := range entries {
		if len(e.data) != i {
			t.Errorf("entry %s has %d bytes, want %d", e.name, len(e.data), i)
		}
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive is %d bytes, not a multiple of 4", buf.Len())
	}
}

func TestCpioShortFile(t *testing.T) {
	cw := &cpioWriter{w: io.Discard}
	cw.file("short", 0o644, 10, bytes.NewReader([]byte("abc")))
	if err := cw.close(); err == nil {
		t.Error("a file shorter than its size was written")
	}
}

// TestInitramfsReadsWithBusybox checks the archive with a reader that is
// not ours: busybox's cpio lists the same entries.
func TestInitramfsReadsWithBusybox(t *testing.T) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Skipf(t, "busybox is not installed (make host-setup installs busybox-static)")
	}
	var buf bytes.Buffer
	if err := BuildInitramfs(&buf, fakeKernel(t), writeInit(t, "#!init")); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(busybox, "cpio", "-t")
	cmd.Stdin = zr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("busybox cpio -t: %v", err)
	}
	listed := strings.Fields(string(out))
	if len(listed) != 19 || listed[0] != "dev" || listed[2] != "init" || listed[18] != "sys" {
		t.Errorf("busybox cpio lists %q", listed)
	}
}

func TestBuildInitramfsBuiltinKernel(t *testing.T) {
	dir := t.TempDir()
	writeStrataKernel(t, dir, "6.1.192-strata", strataConfig())
	k, err := FindKernel(dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := BuildInitramfs(&buf, k, writeInit(t, "#!init")); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range readCpio(t, buf.Bytes()) {
		names = append(names, e.name)
	}
	want := []string{"dev", "dev/console", "init", "newroot", "proc", "run", "sys"}
	if !slices.Equal(names, want) {
		t.Errorf("entries = %v, want %v (no modules)", names, want)
	}
	// A kernel without modules that lacks a driver the guest needs is refused,
	// naming the option.
	writeStrataKernel(t, dir, "6.1.192-strata", strings.Replace(strataConfig(), "CONFIG_VIRTIO_BLK=y", "# CONFIG_VIRTIO_BLK is not set", 1))
	err = BuildInitramfs(&buf, k, writeInit(t, "#!init"))
	if err == nil || !strings.Contains(err.Error(), "CONFIG_VIRTIO_BLK") || !strings.Contains(err.Error(), k.Config) {
		t.Errorf("kernel without virtio_blk built in: %v, want an error naming CONFIG_VIRTIO_BLK and the config", err)
	}
	// A node guest needs overlayfs and the rest built in as well.
	writeStrataKernel(t, dir, "6.1.192-strata", strataConfig("CONFIG_OVERLAY_FS=y", "CONFIG_CGROUPS=y", "CONFIG_SECCOMP_FILTER=y"))
	_, err = nodeEntries(k, writeInit(t, "#!init"), NodeTools{Crun: "/bin/sh"})
	if err == nil || !strings.Contains(err.Error(), "CONFIG_VIRTIO_FS") || strings.Contains(err.Error(), "CONFIG_OVERLAY_FS") {
		t.Errorf("node kernel without virtiofs: %v, want an error naming only CONFIG_VIRTIO_FS", err)
	}
}
