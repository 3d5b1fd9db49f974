package extract

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWriteUpperNotLayer: an upper directory whose changes a layer cannot
// say file by file is refused, also when overlayfs marks a metadata-only
// copy with an empty attribute: it is its presence that counts.
func TestWriteUpperNotLayer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: trusted.* attributes need root")
	}
	for _, tc := range []struct {
		name, file, attr, value string
	}{
		{"metacopy, empty", "etc/passwd", XattrMetacopy, ""},
		{"metacopy, with a digest", "etc/passwd", XattrMetacopy, "\x00\x24\x01\x01"},
		{"redirect", "srv", XattrRedirect, "/opt/app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(dir, "srv"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := unix.Lsetxattr(filepath.Join(dir, tc.file), tc.attr, []byte(tc.value), 0); err != nil {
				t.Skipf("skipping: this file system keeps no %s: %v", tc.attr, err)
			}
			err := WriteUpper(TarLayer{tar.NewWriter(io.Discard)}, dir)
			if !errors.Is(err, ErrNotLayer) {
				t.Fatalf("WriteUpper = %v, want ErrNotLayer", err)
			}
		})
	}
}

// TestWriteUpperRoundTrip: what WriteUpper writes, Extract with whiteouts
// unpacks into the same tree (files, modes, a symlink, a hard link), and a
// whiteout and an opaque directory become markers.
func TestWriteUpperRoundTrip(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: whiteouts (0:0 character devices) and trusted.* attributes need root")
	}
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "etc/app"), 0o750))
	must(os.WriteFile(filepath.Join(dir, "etc/app/conf"), []byte("port=8080\n"), 0o640))
	must(os.Link(filepath.Join(dir, "etc/app/conf"), filepath.Join(dir, "etc/app/conf.bak")))
	must(os.Symlink("app/conf", filepath.Join(dir, "etc/current")))
	must(unix.Mknod(filepath.Join(dir, "etc/hosts"), unix.S_IFCHR, 0))
	must(os.Mkdir(filepath.Join(dir, "cache"), 0o755))
	must(unix.Lsetxattr(filepath.Join(dir, "cache"), XattrOpaque, []byte("y"), 0))

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must(WriteUpper(TarLayer{tw}, dir))
	must(tw.Close())
	names := map[string]byte{}
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(err)
		names[h.Name] = h.Typeflag
	}
	want := map[string]byte{"etc/": tar.TypeDir, "etc/app/": tar.TypeDir, "etc/app/conf": tar.TypeReg, "etc/app/conf.bak": tar.TypeLink,
		"etc/current": tar.TypeSymlink, "etc/.wh.hosts": tar.TypeReg, "cache/": tar.TypeDir, "cache/.wh..wh..opq": tar.TypeReg}
	for n, typ := range want {
		if names[n] != typ {
			t.Errorf("entry %s: type %q, want %q (entries %v)", n, names[n], typ, names)
		}
	}
	if len(names) != len(want) {
		t.Errorf("entries %v, want %v", names, want)
	}

	out := t.TempDir()
	root, err := os.OpenRoot(out)
	must(err)
	defer root.Close()
	if _, err := Extract(bytes.NewReader(buf.Bytes()), root, Options{Whiteouts: true}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "etc/app/conf.bak")); err != nil || string(b) != "port=8080\n" {
		t.Errorf("conf.bak after the round trip: %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(out, "etc/app/conf")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("conf's mode after the round trip: %v, %v; want 0640", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(out, "etc/current")); err != nil || l != "app/conf" {
		t.Errorf("etc/current after the round trip: %q, %v", l, err)
	}
}
