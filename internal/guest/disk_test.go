package guest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/internal/testenv"
)

func TestMakeRootDisk(t *testing.T) {
	if _, err := findMkfs(); err != nil {
		t.Skip(err)
	}
	debugfs, err := exec.LookPath("debugfs")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/debugfs"); serr != nil {
			testenv.Skipf(t, "debugfs (e2fsprogs) is not installed")
		}
		debugfs = "/usr/sbin/debugfs"
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "motd"), []byte("welcome\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("etc/motd", filepath.Join(root, "motd")); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(t.TempDir(), "root.img")
	if err := MakeRootDisk(t.Context(), root, disk, 0); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(disk)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size()%mib != 0 || st.Size() < 64*mib || st.Size() > 65*mib {
		t.Errorf("disk of a tiny tree is %d bytes, want 64 MiB and a bit, in whole MiB", st.Size())
	}
	out, err := exec.Command(debugfs, "-R", "cat /etc/motd", disk).Output()
	if err != nil || string(out) != "welcome\n" {
		t.Errorf("/etc/motd on the disk = %q, %v", out, err)
	}
	out, err = exec.Command(debugfs, "-R", "stat /", disk).Output()
	if err != nil || !strings.Contains(string(out), "User:     0   Group:     0") {
		t.Errorf("the disk's root is not owned by root: %s %v", out, err)
	}

	// Too small a size is refused; a failing mkfs leaves no file and says why.
	if err := MakeRootDisk(context.Background(), root, disk+"1", 1); err == nil {
		t.Error("a 1-byte disk was made")
	}
	err = MakeRootDisk(context.Background(), root, disk+"2", 20000)
	if err == nil || !strings.Contains(err.Error(), "mkfs.ext4") {
		t.Errorf("mkfs of a 20000-byte disk: %v, want mkfs's complaint", err)
	}
	if err := MakeRootDisk(context.Background(), filepath.Join(root, "missing"), disk+"3", 0); err == nil {
		t.Error("a disk from a missing tree was made")
	}
	for _, p := range []string{disk + "1", disk + "2", disk + "3"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was left behind", p)
		}
	}
}
