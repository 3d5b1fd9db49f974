package containerd

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/containerd/containerd/mount"

	"strata.dev/strata/internal/extract"
	"strata.dev/strata/internal/runtime"
)

// upperTree makes an overlay upper directory as the kernel leaves it after a
// container's writes: a new directory with a large and a small file, a changed
// configuration file, a removed binary (a 0:0 character device), a directory removed
// and made again (opaque), a symbolic link and a file with two links. It skips the
// test where whiteouts or trusted attributes cannot be made (not root).
func upperTree(t *testing.T) (dir string, big []byte) {
	t.Helper()
	dir = t.TempDir()
	big = bytes.Repeat([]byte("2026-12-07T06:00:00Z worker 3 processed batch 99 in 12ms\n"), 20000) // 1.1 MiB
	mk := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("srv/app/journal.log", big)
	mk("srv/app/pid", []byte("42\n"))
	mk("etc/motd", []byte("changed\n"))
	mk("var/cache/fresh/index", []byte("1\n"))
	mk("srv/app/shared", bytes.Repeat([]byte{3}, 70<<10))
	if err := os.Link(filepath.Join(dir, "srv/app/shared"), filepath.Join(dir, "srv/app/shared.2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("app/journal.log", filepath.Join(dir, "srv/current")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mknod(filepath.Join(dir, "bin/wget"), syscall.S_IFCHR|0o600, 0); err != nil {
		t.Skipf("cannot make an overlay whiteout (a 0:0 character device) here: %v", err)
	}
	if err := syscall.Setxattr(filepath.Join(dir, "var/cache/fresh"), extract.XattrOpaque, []byte("y"), 0); err != nil {
		t.Skipf("cannot set a trusted attribute here: %v", err)
	}
	return dir, big
}

// entries is what a test compares of a layer's entries.
func entries(t *testing.T, layer []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%c %s %o link=%s %d bytes %x", h.Typeflag, h.Name, h.Mode, h.Linkname, len(data), data[:min(len(data), 4)]))
	}
}

// TestWriteUpperLayer: the upper directory becomes a layer with its whiteouts and
// opaque directories in the layer format, a hard link written once; with an index,
// the large files it knows are left out at the offsets the plan gives, and putting
// their content back gives the layer written without an index, byte for byte.
func TestWriteUpperLayer(t *testing.T) {
	dir, big := upperTree(t)
	var full bytes.Buffer
	plan, err := writeUpperLayer(&full, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plan != nil {
		t.Errorf("a layer written without an index has a plan: %+v", plan)
	}
	got := entries(t, full.Bytes())
	want := []string{
		"5 bin/ 755 link= 0 bytes ",
		"0 bin/.wh.wget 600 link= 0 bytes ",
		"5 etc/ 755 link= 0 bytes ",
		"0 etc/motd 644 link= 8 bytes 6368616e",
		"5 srv/ 755 link= 0 bytes ",
		"5 srv/app/ 755 link= 0 bytes ",
		fmt.Sprintf("0 srv/app/journal.log 644 link= %d bytes 32303236", len(big)),
		"0 srv/app/pid 644 link= 3 bytes 34320a",
		"0 srv/app/shared 644 link= 71680 bytes 03030303",
		"1 srv/app/shared.2 644 link=srv/app/shared 0 bytes ",
		"2 srv/current 777 link=app/journal.log 0 bytes ",
		"5 var/ 755 link= 0 bytes ",
		"5 var/cache/ 755 link= 0 bytes ",
		"5 var/cache/fresh/ 755 link= 0 bytes ",
		"0 var/cache/fresh/.wh..wh..opq 600 link= 0 bytes ",
		"0 var/cache/fresh/index 644 link= 2 bytes 310a",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("layer:\n%q\nwant:\n%q", got, want)
	}

	var asked []string
	var partial bytes.Buffer
	plan, err = writeUpperLayer(&partial, dir, func(p string, st runtime.FileState) bool {
		asked = append(asked, p)
		return p == "srv/app/journal.log" && st.Size == int64(len(big)) && st.Inode != 0 && st.Ctime != 0
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(asked, []string{"srv/app/journal.log", "srv/app/shared"}) || len(plan) != 2 || !plan[0].Skipped || plan[1].Skipped {
		t.Fatalf("index asked about %q, plan %+v; want the two large files, the journal left out", asked, plan)
	}
	rebuilt := slices.Concat(partial.Bytes()[:plan[0].Offset], big, partial.Bytes()[plan[0].Offset:])
	if partial.Len() != full.Len()-len(big) || !bytes.Equal(rebuilt, full.Bytes()) {
		t.Fatalf("partial layer %d bytes; want %d less than the whole %d, and equal to it once rebuilt", partial.Len(), len(big), full.Len())
	}
}

// TestWriteUpperLayerRedirect: a directory renamed in an overlay with redirects does
// not list its content in the upper directory; the writer says it cannot, and the
// caller writes the layer whole.
func TestWriteUpperLayerRedirect(t *testing.T) {
	dir, _ := upperTree(t)
	if err := syscall.Setxattr(filepath.Join(dir, "srv/app"), extract.XattrRedirect, []byte("/opt/app"), 0); err != nil {
		t.Fatal(err)
	}
	_, err := writeUpperLayer(io.Discard, dir, nil)
	if !errors.Is(err, runtime.ErrUnsupported) {
		t.Fatalf("upper directory with a redirect: %v, want ErrUnsupported", err)
	}
}

// TestUpperDir: only a single overlay mount with an upper directory names one.
func TestUpperDir(t *testing.T) {
	overlay := mount.Mount{Type: "overlay", Source: "overlay",
		Options: []string{"index=off", "workdir=/c/snapshots/7/work", "upperdir=/c/snapshots/7/fs", "lowerdir=/c/snapshots/1/fs"}}
	for _, tc := range []struct {
		mounts []mount.Mount
		want   string
	}{
		{[]mount.Mount{overlay}, "/c/snapshots/7/fs"},
		{nil, ""},
		{[]mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/c/snapshots/2/fs:/c/snapshots/1/fs"}}}, ""},
		{[]mount.Mount{{Type: "bind", Source: "/c/snapshots/7/fs", Options: []string{"rbind", "rw"}}}, ""},
		{[]mount.Mount{overlay, overlay}, ""},
	} {
		got, ok := upperDir(tc.mounts)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("upperDir(%+v) = %q, %v; want %q", tc.mounts, got, ok, tc.want)
		}
	}
}
