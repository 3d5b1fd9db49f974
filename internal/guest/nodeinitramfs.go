package guest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// NodeTools are the host's container runtimes that a node guest gets, on
// its tools disk (NodeToolsDisk) or in its initramfs. Dynamically linked
// ones come with the libraries and the loader ldd names, at the paths ldd
// gives.
type NodeTools struct {
	// Crun is a crun binary, the container tier's runtime.
	Crun string
	// Runc is a runc binary, for containers that ask for RuntimeRunc;
	// empty (the default) leaves it out. It goes with RuntimeRunc.
	Runc string
	// Runsc is gVisor's runsc (static); empty leaves the sandbox tier out.
	Runsc string
}

// DefaultNodeTools are Debian's crun and the runsc that `make host-setup`
// installs; Runsc is empty when it is missing. runc is not among them.
func DefaultNodeTools() NodeTools {
	t := NodeTools{Crun: "/usr/bin/crun"}
	if p, err := exec.LookPath("crun"); err == nil {
		t.Crun = p
	}
	if _, err := os.Stat("/opt/strata/bin/runsc"); err == nil {
		t.Runsc = "/opt/strata/bin/runsc"
	}
	return t
}

// BuildNodeInitramfs writes the initramfs of a node guest: the base one's
// files with NodeModules added, crun at CrunPath (and runc at RuncPath)
// with their libraries, and runsc at RunscPath. Equal inputs give equal
// bytes, as BuildInitramfs.
func BuildNodeInitramfs(w io.Writer, k Kernel, initBinary string, tools NodeTools) error {
	entries, err := nodeEntries(k, initBinary, tools)
	if err != nil {
		return err
	}
	return writeArchive(w, entries)
}

func nodeEntries(k Kernel, initBinary string, tools NodeTools) ([]entry, error) {
	entries, err := nodeBaseEntries(k, initBinary)
	if err != nil {
		return nil, err
	}
	te, err := toolEntries(tools)
	if err != nil {
		return nil, fmt.Errorf("node initramfs: %w", err)
	}
	return append(entries, te...), nil
}

// nodeBaseEntries are the files of a node initramfs without the runtimes:
// the base initramfs's, NodeModules, and the directories a node guest uses.
func nodeBaseEntries(k Kernel, initBinary string) ([]entry, error) {
	entries, err := baseEntries(k, initBinary, append(slices.Clone(Modules), NodeModules...))
	if err != nil {
		return nil, err
	}
	missing, err := k.missingBuiltin(NodeBuiltinOptions)
	if err != nil {
		return nil, fmt.Errorf("node initramfs: %w", err)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("node initramfs: kernel %s has no modules and %s does not build in %s, which node guests need (rebuild it with hack/guest-kernel/strata.config: `make host-setup`)",
			k.Version, k.Config, strings.Join(missing, ", "))
	}
	for _, d := range []string{"/tmp", "/etc"} {
		entries = append(entries, entry{name: strings.TrimPrefix(d, "/"), perm: 0o755, dir: true})
	}
	return entries, nil
}

// toolEntries are the runtimes of tools at their paths in the guest: crun
// at CrunPath and runc at RuncPath with their libraries and loader (each
// once), and runsc at RunscPath.
func toolEntries(tools NodeTools) ([]entry, error) {
	if tools.Crun == "" {
		return nil, errors.New("no crun given; install Debian's crun (`make host-setup`)")
	}
	bins := []struct{ path, src string }{{CrunPath, tools.Crun}, {RuncPath, tools.Runc}}
	var entries []entry
	var libs []string
	for _, b := range bins {
		if b.src == "" {
			continue
		}
		l, err := sharedLibraries(b.src)
		if err != nil {
			return nil, err
		}
		libs = append(libs, l...)
		entries = append(entries, entry{name: strings.TrimPrefix(b.path, "/"), perm: 0o755, src: b.src})
	}
	slices.Sort(libs)
	for _, lib := range slices.Compact(libs) {
		entries = append(entries, entry{name: strings.TrimPrefix(lib, "/"), perm: 0o755, src: lib})
	}
	if tools.Runsc != "" {
		entries = append(entries, entry{name: strings.TrimPrefix(RunscPath, "/"), perm: 0o755, src: tools.Runsc})
	}
	return entries, nil
}

// sharedLibraries are the absolute paths of the libraries and the loader
// that ldd lists for bin; none for a static binary.
func sharedLibraries(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("not a dynamic executable")) {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w: %s", bin, err, strings.TrimSpace(string(out)))
	}
	return parseLdd(bin, out)
}

// parseLdd reads ldd's lines: "name => /path (addr)", "/loader (addr)",
// and "linux-vdso.so.1 (addr)", which the kernel provides.
func parseLdd(bin string, out []byte) ([]string, error) {
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "linux-vdso") || strings.HasPrefix(line, "linux-gate") {
			continue
		}
		p := line
		if _, after, ok := strings.Cut(line, "=>"); ok {
			p = strings.TrimSpace(after)
		}
		p, _, _ = strings.Cut(p, " (")
		if p == "not found" || !filepath.IsAbs(p) {
			return nil, fmt.Errorf("ldd %s: line %d %q: a library is missing; install it on the host", bin, n, line)
		}
		libs = append(libs, p)
	}
	slices.Sort(libs)
	return slices.Compact(libs), nil
}

// NodeInitramfs returns the node initramfs for these inputs from cacheDir,
// building it there first when it is missing. The file's name is a hash of
// the kernel version and the contents of every file it holds, so a new init,
// crun or runsc gives a new file.
func NodeInitramfs(cacheDir string, k Kernel, initBinary string, tools NodeTools) (string, error) {
	entries, err := nodeEntries(k, initBinary, tools)
	if err != nil {
		return "", err
	}
	return cachedInitramfs(cacheDir, k, entries)
}

// NodeBaseInitramfs is NodeInitramfs without the runtimes: a node guest
// booted from it takes them from the tools disk (NodeToolsDisk,
// Config.ToolsDisk), so that they are not unpacked into its memory.
func NodeBaseInitramfs(cacheDir string, k Kernel, initBinary string) (string, error) {
	entries, err := nodeBaseEntries(k, initBinary)
	if err != nil {
		return "", err
	}
	return cachedInitramfs(cacheDir, k, entries)
}

// cachedInitramfs returns the archive of entries in cacheDir, named by a
// hash of the kernel version and the entries, writing it first when it is
// missing.
func cachedInitramfs(cacheDir string, k Kernel, entries []entry) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "node-initramfs 1\nkernel %s\n", k.Version)
	if err := hashEntries(h, entries); err != nil {
		return "", fmt.Errorf("node initramfs: %w", err)
	}
	path := filepath.Join(cacheDir, "node-initramfs-"+hex.EncodeToString(h.Sum(nil))[:24]+".gz")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	err := writeCached(cacheDir, path, func(f *os.File) error {
		bw := bufio.NewWriterSize(f, 1<<20)
		if err := writeArchive(bw, entries); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return "", fmt.Errorf("node initramfs: %w", err)
	}
	return path, nil
}

// hashEntries sorts entries by name and writes each one's name, mode and
// contents to h.
func hashEntries(h io.Writer, entries []entry) error {
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	for _, e := range entries {
		fmt.Fprintf(h, "%s %o %t\n", e.name, e.perm, e.dir)
		if e.src == "" {
			continue
		}
		f, err := os.Open(e.src)
		if err != nil {
			return err
		}
		_, err = io.Copy(h, f)
		_ = f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// writeCached makes path in cacheDir: write fills a temporary file there,
// which then takes path's name, so that a reader never sees half a file.
func writeCached(cacheDir, path string, write func(*os.File) error) error {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil { //nolint:gosec // G301: a cache of public binaries
		return err
	}
	tmp, err := os.CreateTemp(cacheDir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
