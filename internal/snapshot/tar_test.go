package snapshot

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
	must(os.Chmod(filepath.Join(src, "empty"), 0o4755))
	must(os.Chtimes(filepath.Join(src, "db", "data"), mtime, mtime))
	must(os.Chtimes(filepath.Join(src, "db"), mtime, mtime))

	archive := filepath.Join(t.TempDir(), "v.tar")
	must(writeTar(archive, src))
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
		if err == nil || !strings.Contains(err.Error(), "leaves the volume") {
			t.Errorf("entry %q: %v, want it refused", name, err)
		}
	}
}
