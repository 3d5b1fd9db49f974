package guest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// The base initramfs's layout.
const (
	// InitPath is the guest init in the initramfs; the kernel runs /init.
	InitPath = "/init"
	// NewRoot is where the guest init mounts the root filesystem.
	NewRoot = "/newroot"
	// ModulesRoot holds the modules, under <version>/ with the paths they
	// have in the kernel package.
	ModulesRoot = "/lib/modules"
)

// entry is one file of an archive: a directory (src and data empty), a
// character device (rdev set), or a regular file read from src or held in
// data.
type entry struct {
	name       string
	perm       uint32
	dir        bool
	char       bool
	rmaj, rmin uint32
	src        string
	data       []byte
}

// BuildInitramfs writes strata's base initramfs to w: a gzip'd newc cpio
// archive with initBinary as /init, the mount points the init uses, a
// /dev/console node (so the init starts with the console as its stdio), and
// the modules of Modules that k has, at ModulesRoot/<version>/. Equal inputs
// give equal bytes: entries are sorted, owned by root, dated 0, numbered in
// order, and the gzip header carries no name or time.
func BuildInitramfs(w io.Writer, k Kernel, initBinary string) error {
	entries, err := baseEntries(k, initBinary, Modules)
	if err != nil {
		return err
	}
	return writeArchive(w, entries)
}

// baseEntries are the files of the base initramfs with the modules names.
func baseEntries(k Kernel, initBinary string, names []string) ([]entry, error) {
	st, err := os.Stat(initBinary)
	if err != nil {
		return nil, fmt.Errorf("initramfs: strata's guest init: %w (build it with `make build`)", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("initramfs: strata's guest init %s is not a regular file", initBinary)
	}
	mods, err := k.moduleFiles(names)
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	if k.Builtin {
		missing, err := k.missingBuiltin(BuiltinOptions)
		if err != nil {
			return nil, fmt.Errorf("initramfs: %w", err)
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("initramfs: kernel %s has no modules and %s does not build in %s; the guest could not boot (rebuild it with hack/guest-kernel/strata.config: `make host-setup`)",
				k.Version, k.Config, strings.Join(missing, ", "))
		}
	} else if _, ok := mods["virtio_blk"]; !ok {
		return nil, fmt.Errorf("initramfs: kernel %s has no virtio_blk module under %s; the guest could not see its root disk", k.Version, k.ModulesDir)
	}
	entries := []entry{
		{name: "dev", perm: 0o755, dir: true},
		{name: "dev/console", perm: 0o600, char: true, rmaj: 5, rmin: 1},
		{name: strings.TrimPrefix(InitPath, "/"), perm: 0o755, src: initBinary},
	}
	for _, d := range []string{NewRoot, "/proc", "/sys", "/run"} {
		entries = append(entries, entry{name: strings.TrimPrefix(d, "/"), perm: 0o755, dir: true})
	}
	modRoot := strings.TrimPrefix(ModulesRoot, "/") + "/" + k.Version
	for _, rel := range mods {
		entries = append(entries, entry{name: modRoot + "/" + rel, perm: 0o644, src: filepath.Join(k.ModulesDir, filepath.FromSlash(rel))})
	}
	return entries, nil
}

// ConfigArchive is a gzip'd newc cpio archive holding c at ConfigPath.
// Appended to the base initramfs, it gives one VM its Config.
func ConfigArchive(c Config) ([]byte, error) {
	data, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = writeArchive(&buf, []entry{{name: strings.TrimPrefix(ConfigPath, "/"), perm: 0o600, data: data}})
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeArchive adds the missing parent directories of entries, sorts them
// (a parent sorts before its children) and writes them as a gzip'd cpio.
func writeArchive(w io.Writer, entries []entry) error {
	have := map[string]bool{}
	for _, e := range entries {
		have[e.name] = true
	}
	for _, e := range entries {
		for d := path.Dir(e.name); d != "." && !have[d]; d = path.Dir(d) {
			have[d] = true
			entries = append(entries, entry{name: d, perm: 0o755, dir: true})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })

	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	cw := &cpioWriter{w: zw}
	for _, e := range entries {
		if err := writeEntry(cw, e); err != nil {
			return err
		}
	}
	if err := cw.close(); err != nil {
		return err
	}
	return zw.Close()
}

func writeEntry(cw *cpioWriter, e entry) error {
	switch {
	case e.dir:
		cw.dir(e.name, e.perm)
	case e.char:
		cw.charDev(e.name, e.perm, e.rmaj, e.rmin)
	case e.src != "":
		f, err := os.Open(e.src)
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		cw.file(e.name, e.perm, st.Size(), f)
	default:
		cw.file(e.name, e.perm, int64(len(e.data)), bytes.NewReader(e.data))
	}
	return cw.err
}
