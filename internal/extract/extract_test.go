package extract_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"strata.dev/strata/internal/extract"
)

// entry is one tar entry of a test archive.
type entry struct {
	name, link string
	typ        byte
	mode       int64
	body       string
}

func archive(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: mode, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func extractInto(t testing.TB, dir string, data []byte, opt extract.Options) error {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, err = extract.Extract(bytes.NewReader(data), root, opt)
	return err
}

// listTree names everything beneath dir.
func listTree(t testing.TB, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestRefusesEscapes: archives that try to write outside the target, each as an
// attacker would build it, are refused, and the directory beside the target (the
// place they aim at) stays as it was.
func TestRefusesEscapes(t *testing.T) {
	for _, opt := range []extract.Options{{}, {Whiteouts: true, SpecialModes: true, Owners: true}} {
		outside := t.TempDir()
		if err := os.WriteFile(filepath.Join(outside, "passwd"), []byte("root:x:0:0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name    string
			entries []entry
		}{
			{"symlink to an absolute directory, then a file through it", []entry{
				{name: "esc", link: outside, typ: tar.TypeSymlink},
				{name: "esc/x", typ: tar.TypeReg, mode: 0o4755, body: "#!/bin/sh\n"},
			}},
			{"symlink climbing out, then a file through it", []entry{
				{name: "a/", typ: tar.TypeDir},
				{name: "a/esc", link: "../../" + filepath.Base(outside), typ: tar.TypeSymlink},
				{name: "a/esc/x", typ: tar.TypeReg, body: "x"},
			}},
			{"symlink, then a directory through it", []entry{
				{name: "esc", link: outside, typ: tar.TypeSymlink},
				{name: "esc/sub/", typ: tar.TypeDir},
			}},
			{"symlink, then a symlink through it", []entry{
				{name: "esc", link: outside, typ: tar.TypeSymlink},
				{name: "esc/link", link: "/", typ: tar.TypeSymlink},
			}},
			{"dot-dot name", []entry{{name: "../x", typ: tar.TypeReg, body: "x"}}},
			{"dot-dot inside a name", []entry{{name: "a/../../x", typ: tar.TypeReg, body: "x"}}},
			{"absolute name", []entry{{name: filepath.Join(outside, "x"), typ: tar.TypeReg, body: "x"}}},
			{"hard link to an absolute file", []entry{{name: "pw", link: "/etc/passwd", typ: tar.TypeLink}}},
			{"hard link climbing out", []entry{{name: "pw", link: "../" + filepath.Base(outside) + "/passwd", typ: tar.TypeLink}}},
			{"hard link through a symlink", []entry{
				{name: "esc", link: outside, typ: tar.TypeSymlink},
				{name: "pw", link: "esc/passwd", typ: tar.TypeLink},
			}},
			{"hard link into a symlinked directory", []entry{
				{name: "f", typ: tar.TypeReg, body: "x"},
				{name: "esc", link: outside, typ: tar.TypeSymlink},
				{name: "esc/x", link: "f", typ: tar.TypeLink},
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "target")
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				// "climbing out" names are relative to the target's parent.
				if err := os.Symlink(outside, filepath.Join(filepath.Dir(dir), filepath.Base(outside))); err != nil {
					t.Fatal(err)
				}
				err := extractInto(t, dir, archive(t, tc.entries...), opt)
				if err == nil {
					t.Errorf("extracted; want it refused (target now holds %v)", listTree(t, dir))
				}
				if got := listTree(t, outside); len(got) != 1 || got[0] != "passwd" {
					t.Errorf("the directory outside now holds %v (error %v)", got, err)
				}
				fi, _ := os.Stat(filepath.Join(outside, "passwd"))
				if n := fi.Sys().(*syscall.Stat_t).Nlink; n != 1 {
					t.Errorf("outside/passwd has %d links, want 1", n)
				}
			})
		}
	}
}

// TestSymlinkAlreadyThere: a symbolic link that was in the target before the
// extraction is not followed out of it either.
func TestSymlinkAlreadyThere(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "esc")); err != nil {
		t.Fatal(err)
	}
	err := extractInto(t, dir, archive(t, entry{name: "esc/x", typ: tar.TypeReg, body: "x"}), extract.Options{})
	if err == nil || !strings.Contains(err.Error(), `"esc/x"`) {
		t.Errorf("err = %v, want entry esc/x refused", err)
	}
	if got := listTree(t, outside); len(got) != 0 {
		t.Errorf("outside holds %v", got)
	}
}

// TestKinds: directories, files, links inside the target and modes come out as
// asked; setuid and setgid only with SpecialModes; devices and pipes never.
func TestKinds(t *testing.T) {
	data := archive(t,
		entry{name: "d/", typ: tar.TypeDir, mode: 0o750},
		entry{name: "d/f", typ: tar.TypeReg, mode: 0o4755, body: "hello"},
		entry{name: "d/g", typ: tar.TypeReg, mode: 0o2644, body: "g"},
		entry{name: "d/t/", typ: tar.TypeDir, mode: 0o1777},
		entry{name: "rel", link: "d/f", typ: tar.TypeSymlink},
		entry{name: "abs", link: "/etc/passwd", typ: tar.TypeSymlink},
		entry{name: "hard", link: "d/f", typ: tar.TypeLink},
		entry{name: "null", typ: tar.TypeChar, mode: 0o666},
		entry{name: "disk", typ: tar.TypeBlock, mode: 0o660},
		entry{name: "fifo", typ: tar.TypeFifo, mode: 0o644},
		entry{name: "implicit/parent/file", typ: tar.TypeReg, body: "p"},
	)
	for _, special := range []bool{false, true} {
		dir := t.TempDir()
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		st, err := extract.Extract(bytes.NewReader(data), root, extract.Options{SpecialModes: special})
		root.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.Skipped != 3 || st.Bytes != 7 {
			t.Errorf("stats %+v, want 3 skipped and 7 bytes", st)
		}
		wantF, wantG := fs.FileMode(0o755), fs.FileMode(0o644)
		if special {
			wantF, wantG = 0o755|fs.ModeSetuid, 0o644|fs.ModeSetgid
		}
		for name, want := range map[string]fs.FileMode{"d": fs.ModeDir | 0o750, "d/f": wantF, "d/g": wantG, "d/t": fs.ModeDir | fs.ModeSticky | 0o777} {
			fi, err := os.Lstat(filepath.Join(dir, name))
			if err != nil || fi.Mode() != want {
				t.Errorf("special=%v: %s: %v %v, want %v", special, name, fi.Mode(), err, want)
			}
		}
		for _, name := range []string{"null", "disk", "fifo"} {
			if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s was created (%v); devices and pipes are skipped", name, err)
			}
		}
		if l, _ := os.Readlink(filepath.Join(dir, "abs")); l != "/etc/passwd" {
			t.Errorf("abs -> %q: a symbolic link's target is kept as it is", l)
		}
		a, _ := os.Stat(filepath.Join(dir, "hard"))
		b, _ := os.Stat(filepath.Join(dir, "d/f"))
		if !os.SameFile(a, b) {
			t.Errorf("hard is not a hard link to d/f")
		}
		if b, err := os.ReadFile(filepath.Join(dir, "implicit/parent/file")); err != nil || string(b) != "p" {
			t.Errorf("implicit/parent/file: %q %v", b, err)
		}
	}
}

// TestWhiteouts: a layer's .wh. entries remove what lower layers put there; an
// opaque directory keeps only what the layer itself writes into it.
func TestWhiteouts(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"bin/wget", "bin/sh", "etc/old/a", "etc/old/sub/b", "etc/keep/c"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data := archive(t,
		entry{name: "bin/.wh.wget", typ: tar.TypeReg},
		entry{name: "etc/old/sub/new", typ: tar.TypeReg, body: "n"},
		entry{name: "etc/old/.wh..wh..opq", typ: tar.TypeReg},
		entry{name: "etc/old/later", typ: tar.TypeReg, body: "l"},
		entry{name: "bin/.wh..", typ: tar.TypeReg},
	)
	err := extractInto(t, dir, data, extract.Options{Whiteouts: true})
	if err == nil || !errors.Is(err, extract.ErrOutside) {
		t.Errorf("whiteout of ..: %v, want it refused", err)
	}
	got := strings.Join(listTree(t, dir), " ")
	want := "bin bin/sh etc etc/keep etc/keep/c etc/old etc/old/later etc/old/sub etc/old/sub/new"
	if got != want {
		t.Errorf("after the layer:\n got %s\nwant %s", got, want)
	}
}

// TestMaxBytes: an archive whose files add up to more than the bound stops there.
func TestMaxBytes(t *testing.T) {
	data := archive(t,
		entry{name: "a", typ: tar.TypeReg, body: strings.Repeat("a", 600)},
		entry{name: "b", typ: tar.TypeReg, body: strings.Repeat("b", 600)},
	)
	err := extractInto(t, t.TempDir(), data, extract.Options{MaxBytes: 1000})
	if !errors.Is(err, extract.ErrTooLarge) || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("err = %v, want entry b refused as too large", err)
	}
	if err := extractInto(t, t.TempDir(), data, extract.Options{MaxBytes: 1200}); err != nil {
		t.Errorf("within the bound: %v", err)
	}
}
