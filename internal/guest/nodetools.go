package guest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The tools disk. A node guest booted with Config.ToolsDisk finds its
// container runtimes on a read-only ext4 disk rather than in its
// initramfs: the kernel unpacks an initramfs into the guest's memory
// whole (runsc alone is about 95 MiB), while a disk's pages are read when
// used and can be dropped again, and one file on the host serves every
// node VM.
const (
	// ToolsDiskSerial is the serial number the host gives the tools disk.
	ToolsDiskSerial = "strata-tools"
	// ToolsMount is where the guest mounts it, read-only. Every file on it
	// is linked at its own path in the guest's root (CrunPath, RunscPath,
	// crun's libraries), where the initramfs would have put it.
	ToolsMount = "/strata/tools"
)

// NodeToolsDisk returns the tools disk for tools from cacheDir, building it
// there first when it is missing: an ext4 image (MakeRootDisk) holding crun
// at CrunPath (and runc at RuncPath when tools has one) with the libraries
// and the loader ldd names, and runsc at RunscPath when tools has one. The
// file's name is a hash of the contents, so a new crun or runsc gives a new
// file.
func NodeToolsDisk(ctx context.Context, cacheDir string, tools NodeTools) (string, error) {
	entries, err := toolEntries(tools)
	if err != nil {
		return "", fmt.Errorf("node tools disk: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "node-tools 1\n")
	if err := hashEntries(h, entries); err != nil {
		return "", fmt.Errorf("node tools disk: %w", err)
	}
	path := filepath.Join(cacheDir, "node-tools-"+hex.EncodeToString(h.Sum(nil))[:24]+".ext4")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	err = writeCached(cacheDir, path, func(f *os.File) error {
		tree, err := os.MkdirTemp(cacheDir, ".tree-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tree)
		var used int64
		for _, e := range entries {
			n, err := copyEntry(tree, e)
			if err != nil {
				return err
			}
			used += n + 4096
		}
		// The files, the directories and ext4's own metadata, with room to
		// spare: the guest mounts it read-only.
		size := (used + used/8 + 16*mib + mib - 1) / mib * mib
		return MakeRootDisk(ctx, tree, f.Name(), size)
	})
	if err != nil {
		return "", fmt.Errorf("node tools disk: %w", err)
	}
	return path, nil
}

// copyEntry copies e's source (following symbolic links, as the loader's
// path is one on the host) to its name under dir and returns its size.
func copyEntry(dir string, e entry) (int64, error) {
	dst := filepath.Join(dir, filepath.FromSlash(e.name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil { //nolint:gosec // G301: the tree of a read-only disk of public binaries
		return 0, err
	}
	in, err := os.Open(e.src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(e.perm))
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}
