package snapshot

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// FuzzReadTar restores arbitrary volume archives into a volume directory next to a
// host directory holding one file: whatever the archive, the restore writes nothing
// beside the volume, and nothing it creates is setuid, setgid or a device.
func FuzzReadTar(f *testing.F) {
	for _, hdrs := range [][]*tar.Header{
		{{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: "../host"}, {Name: "esc/x", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 1}},
		{{Name: "pw", Typeflag: tar.TypeLink, Linkname: "../host/passwd"}},
		{{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, {Name: "d/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}, {Name: "h", Typeflag: tar.TypeLink, Linkname: "d/f"}},
		{{Name: "null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hdrs {
			_ = tw.WriteHeader(h)
			_, _ = tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
		_ = tw.Close()
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		host, vol := filepath.Join(base, "host"), filepath.Join(base, "vol")
		if err := os.Mkdir(host, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(host, "passwd"), []byte("root:x:0:0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		archive := filepath.Join(base, "v.tar")
		if err := os.WriteFile(archive, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = readTar(archive, vol)
		err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			switch rel, _ := filepath.Rel(base, p); {
			case rel == "." || rel == "host" || rel == "vol" || rel == "v.tar":
			case rel == filepath.Join("host", "passwd"):
				if n := fi.Sys().(*syscall.Stat_t).Nlink; fi.Size() != 11 || fi.Mode() != 0o644 || n != 1 {
					t.Fatalf("host/passwd changed: %v, %d bytes, %d links", fi.Mode(), fi.Size(), n)
				}
			case !strings.HasPrefix(rel, "vol"+string(filepath.Separator)):
				t.Fatalf("%s was written beside the volume", rel)
			}
			if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0 {
				t.Fatalf("%s: %v was restored", p, fi.Mode())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
