package cli

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The daemon's log names workloads, clients and paths: its file is its owner's alone,
// whatever the umask, and an existing file made by a shell is narrowed.
func TestOpenLogFile(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.log")
	if err := os.WriteFile(existing, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "serve.log"), existing} {
		f, err := openLogFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("line\n"); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(path), fi.Mode().Perm())
		}
	}
	if data, _ := os.ReadFile(existing); string(data) != "before\nline\n" {
		t.Errorf("an existing log is not appended to: %q", data)
	}
	if _, err := openLogFile(filepath.Join(dir, "missing", "x.log")); err == nil {
		t.Error("a log file in a missing directory: no error")
	}
}
