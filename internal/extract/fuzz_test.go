package extract_test

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"strata.dev/strata/internal/extract"
)

// FuzzExtract feeds arbitrary archives to Extract, as a layer (whiteouts, special
// modes) and as a volume, into a target inside a directory that also holds a
// sentinel file and a directory the archive might aim at: whatever the archive,
// nothing beside the target changes.
func FuzzExtract(f *testing.F) {
	seeds := [][]entry{
		{{name: "esc", link: "/", typ: tar.TypeSymlink}, {name: "esc/tmp/x", typ: tar.TypeReg, mode: 0o4755, body: "x"}},
		{{name: "esc", link: "../outside", typ: tar.TypeSymlink}, {name: "esc/x", typ: tar.TypeReg, body: "x"}},
		{{name: "../outside/x", typ: tar.TypeReg, body: "x"}},
		{{name: "pw", link: "../outside/sentinel", typ: tar.TypeLink}},
		{{name: "d/", typ: tar.TypeDir}, {name: "d/f", typ: tar.TypeReg, body: "f"}, {name: "d/.wh..wh..opq", typ: tar.TypeReg}, {name: ".wh.d", typ: tar.TypeReg}},
		{{name: "l", link: "d", typ: tar.TypeSymlink}, {name: "d/", typ: tar.TypeDir}, {name: "l/f", typ: tar.TypeReg, body: "f"}, {name: "h", link: "l/f", typ: tar.TypeLink}},
	}
	for _, s := range seeds {
		f.Add(archive(f, s...), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, layer bool) {
		base := t.TempDir()
		outside := filepath.Join(base, "outside")
		target := filepath.Join(base, "target")
		for _, d := range []string{outside, target} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(outside, "sentinel"), []byte("s"), 0o644); err != nil {
			t.Fatal(err)
		}
		before := snapshotTree(t, base, target)
		root, err := os.OpenRoot(target)
		if err != nil {
			t.Fatal(err)
		}
		opt := extract.Options{MaxBytes: 1 << 20}
		if layer {
			opt.Whiteouts, opt.SpecialModes = true, true
		}
		_, _ = extract.Extract(bytes.NewReader(data), root, opt)
		root.Close()
		after := snapshotTree(t, base, target)
		if len(before) != len(after) {
			t.Fatalf("beside the target: before %v, after %v", before, after)
		}
		for name, b := range before {
			if a, ok := after[name]; !ok || a != b {
				t.Fatalf("%s beside the target changed: %v -> %v", name, b, a)
			}
		}
		// Nothing setuid unless asked for; no device nodes ever.
		_ = filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			m := fi.Mode()
			if m&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0 {
				t.Fatalf("%s: %v was created", p, m)
			}
			if !layer && m&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
				t.Fatalf("%s: %v has setuid or setgid", p, m)
			}
			return nil
		})
	})
}

// fileState is what the fuzz target compares of a file beside the target.
type fileState struct {
	mode  fs.FileMode
	size  int64
	nlink uint64
}

// snapshotTree records everything under base except beneath skip (the target).
func snapshotTree(t *testing.T, base, skip string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fileState{mode: fi.Mode(), size: fi.Size()}
		if s, ok := fi.Sys().(*syscall.Stat_t); ok {
			st.nlink = s.Nlink
		}
		out[p] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
