package guest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

const mib = 1 << 20

// MakeRootDisk writes an ext4 filesystem image of size bytes to diskPath
// holding a copy of rootfsDir (owners and modes kept, the root directory
// owned by root). Size 0 picks 1.5 times the tree's size plus 64 MiB,
// rounded up to a MiB. It needs mkfs.ext4 (e2fsprogs 1.43 or newer, for -d).
// On failure diskPath is removed and the error carries mkfs's output.
func MakeRootDisk(ctx context.Context, rootfsDir, diskPath string, size int64) error {
	used, files, err := treeSize(rootfsDir)
	if err != nil {
		return fmt.Errorf("root disk: %w", err)
	}
	if size == 0 {
		size = (used*3/2 + 64*mib + mib - 1) / mib * mib
	}
	if size < used {
		return fmt.Errorf("root disk: %s holds %d bytes, more than the disk size %d; give a larger size or 0 to pick one", rootfsDir, used, size)
	}
	mkfs, err := findMkfs()
	if err != nil {
		return err
	}
	if err := os.WriteFile(diskPath, nil, 0o600); err != nil {
		return fmt.Errorf("root disk: %w", err)
	}
	if err := os.Truncate(diskPath, size); err != nil {
		_ = os.Remove(diskPath)
		return fmt.Errorf("root disk: %w", err)
	}
	args := []string{"-q", "-F", "-d", rootfsDir, "-E", "root_owner=0:0"}
	// mkfs gives one inode per 16 KiB; a tree of many small files needs more.
	if inodes := files*2 + 1024; inodes > size/16384 {
		args = append(args, "-N", strconv.FormatInt(inodes, 10))
	}
	args = append(args, diskPath)
	out, err := exec.CommandContext(ctx, mkfs, args...).CombinedOutput()
	if err != nil {
		_ = os.Remove(diskPath)
		return fmt.Errorf("root disk: mkfs.ext4 %s from %s: %w: %s", diskPath, rootfsDir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// treeSize is the bytes of the regular files under dir, plus a block for
// each other entry, and the number of entries.
func treeSize(dir string) (used, entries int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		entries++
		used += 4096
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			used += info.Size()
		}
		return nil
	})
	return used, entries, err
}

// findMkfs looks for mkfs.ext4 on PATH and in the sbin directories, which a
// non-login PATH may lack.
func findMkfs() (string, error) {
	if p, err := exec.LookPath("mkfs.ext4"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("root disk: mkfs.ext4 not found; install e2fsprogs")
}
