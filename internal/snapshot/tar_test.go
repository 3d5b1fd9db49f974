package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/extract"
	"strata.dev/strata/internal/runtime"
)

// TestTarRoundTrip: a volume's tree comes back as it was: contents, modes, owners,
// symbolic links and times; what was there before the restore is gone.
func TestTarRoundTrip(t *testing.T) {
	src := t.TempDir()
	mtime := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "db", "wal"), 0o750))
	must(os.WriteFile(filepath.Join(src, "db", "data"), bytes.Repeat([]byte("x"), 100000), 0o640))
	must(os.WriteFile(filepath.Join(src, "db", "wal", "0001"), []byte("entry\n"), 0o600))
	must(os.WriteFile(filepath.Join(src, "empty"), nil, 0o644))
	must(os.Symlink("db/data", filepath.Join(src, "current")))
	must(os.Chown(filepath.Join(src, "db", "data"), 1234, 5678))
	must(os.Chmod(filepath.Join(src, "empty"), 0o1755))
	must(os.Chtimes(filepath.Join(src, "db", "data"), mtime, mtime))
	must(os.Chtimes(filepath.Join(src, "db"), mtime, mtime))

	archive := filepath.Join(t.TempDir(), "v.tar")
	must(writeTar(archive, src, nil))
	dst := t.TempDir()
	must(os.WriteFile(filepath.Join(dst, "stale"), []byte("old"), 0o600))
	must(readTar(archive, dst))

	if _, err := os.Stat(filepath.Join(dst, "stale")); !os.IsNotExist(err) {
		t.Errorf("a file that was not in the snapshot survived the restore: %v", err)
	}
	for _, name := range []string{"db/data", "db/wal/0001", "empty"} {
		a, _ := os.ReadFile(filepath.Join(src, name))
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs after the round trip (%v)", name, err)
		}
		sa, _ := os.Lstat(filepath.Join(src, name))
		sb, _ := os.Lstat(filepath.Join(dst, name))
		if sa.Mode() != sb.Mode() {
			t.Errorf("%s: mode %v, want %v", name, sb.Mode(), sa.Mode())
		}
	}
	fi, _ := os.Stat(filepath.Join(dst, "db", "data"))
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1234 || st.Gid != 5678 || !fi.ModTime().Equal(mtime) {
		t.Errorf("db/data: owner %d:%d, time %v; want 1234:5678 and %v", st.Uid, st.Gid, fi.ModTime(), mtime)
	}
	if di, _ := os.Stat(filepath.Join(dst, "db")); !di.ModTime().Equal(mtime) || di.Mode().Perm() != 0o750 {
		t.Errorf("db: %v %v, want 0750 and %v", di.Mode(), di.ModTime(), mtime)
	}
	if link, err := os.Readlink(filepath.Join(dst, "current")); err != nil || link != "db/data" {
		t.Errorf("symlink: %q %v", link, err)
	}
}

// TestTarRefusesEscapes: an archive entry naming a place outside the volume is refused.
func TestTarRefusesEscapes(t *testing.T) {
	for _, name := range []string{"../evil", "/etc/evil", "a/../../evil"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte("x"))
		_ = tw.Close()
		archive := filepath.Join(t.TempDir(), "bad.tar")
		if err := os.WriteFile(archive, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "vol")
		err := readTar(archive, dst)
		if !errors.Is(err, extract.ErrOutside) {
			t.Errorf("entry %q: %v, want it refused", name, err)
		}
	}
}

// TestTarStaysInVolume: archives built to write outside the volume (a symbolic link
// to a host directory and then a file through it, a hard link to a host file) are
// refused and leave the host directory as it was; setuid and setgid bits and device
// nodes are not restored.
func TestTarStaysInVolume(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "passwd"), []byte("root:x:0:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		hdrs []*tar.Header
	}{
		{"symlink then a setuid file through it", []*tar.Header{
			{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: host},
			{Name: "esc/x", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 1},
		}},
		{"symlink then a directory through it", []*tar.Header{
			{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: host},
			{Name: "esc/d/", Typeflag: tar.TypeDir, Mode: 0o755},
		}},
		{"hard link to a host file", []*tar.Header{
			{Name: "pw", Typeflag: tar.TypeLink, Linkname: filepath.Join(host, "passwd")},
		}},
		{"hard link through a symlink", []*tar.Header{
			{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: host},
			{Name: "pw", Typeflag: tar.TypeLink, Linkname: "esc/passwd"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			archive := writeArchive(t, tc.hdrs)
			if err := readTar(archive, filepath.Join(t.TempDir(), "vol")); err == nil {
				t.Errorf("restored; want it refused")
			}
			entries, _ := os.ReadDir(host)
			fi, _ := os.Stat(filepath.Join(host, "passwd"))
			if len(entries) != 1 || fi.Sys().(*syscall.Stat_t).Nlink != 1 {
				t.Errorf("the host directory changed: %d entries, passwd has %d links", len(entries), fi.Sys().(*syscall.Stat_t).Nlink)
			}
		})
	}

	archive := writeArchive(t, []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "bin/su", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 1},
		{Name: "bin/wall", Typeflag: tar.TypeReg, Mode: 0o2755, Size: 1},
		{Name: "bin/sh", Typeflag: tar.TypeLink, Linkname: "bin/su"},
		{Name: "dev-null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "sda", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 8},
	})
	vol := filepath.Join(t.TempDir(), "vol")
	if err := readTar(archive, vol); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"bin/su": 0o755, "bin/wall": 0o755, "bin/sh": 0o755} {
		fi, err := os.Stat(filepath.Join(vol, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
	for _, name := range []string{"dev-null", "sda"} {
		if _, err := os.Lstat(filepath.Join(vol, name)); !os.IsNotExist(err) {
			t.Errorf("%s: the device node was restored (%v)", name, err)
		}
	}
}

// writeArchive writes a tar of hdrs (regular files hold Size bytes of "x") and
// returns its path.
func writeArchive(t *testing.T, hdrs []*tar.Header) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v.tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPutDataRefusesNames: slot file names from a backup's manifest that lead out of
// the download directory, or name a volume "." or "..", are refused before anything
// is read or written: neither the host file nor the workload's other volumes are
// touched.
func TestPutDataRefusesNames(t *testing.T) {
	dataDir, dir := t.TempDir(), t.TempDir()
	host := filepath.Join(t.TempDir(), "secret.tar")
	if err := os.WriteFile(host, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	other := runtime.VolumeDir(dataDir, "web", "logs", 0)
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "keep"), []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := writeArchive(t, nil)
	for _, f := range []string{"0/volumes/..tar", "0/volumes/...tar"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o700); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(empty)
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rel, _ := filepath.Rel(dir, host)
	for _, f := range []string{rel, "/etc/passwd.tar", "0/volumes/..tar", "0/volumes/...tar"} {
		slots := []v1alpha1.SnapshotSlot{{Slot: 0, Files: []string{f}}}
		err := PutData(context.Background(), dataDir, "web", nil, nil, slots, dir)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("file %q: %v, want it refused", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(other, "keep")); err != nil {
		t.Errorf("another volume of the slot lost its files: %v", err)
	}
}
