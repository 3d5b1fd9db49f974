package cli

import (
	"os"
	"path/filepath"
	"strings"
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

// TestServeNodeVMsFlag: --node-vms takes auto or off; anything else is a usage error that
// names both, before the daemon starts; --help documents it.
func TestServeNodeVMsFlag(t *testing.T) {
	for _, v := range []string{"on", "true", "Auto", ""} {
		code, _, stderr := run(t, "", "serve", "--data-dir", t.TempDir(), "--node-vms", v)
		if code != ExitInvalid || !strings.Contains(stderr, `--node-vms "`+v+`": want auto or off`) {
			t.Errorf("--node-vms %q: exit %d, stderr %q; want a usage error naming auto and off", v, code, stderr)
		}
	}
	code, stdout, _ := run(t, "", "serve", "--help")
	if code != ExitOK || !strings.Contains(stdout, "--node-vms string") || !strings.Contains(stdout, "strata get nodes lists them") {
		t.Errorf("serve --help: exit %d, lacks --node-vms or its explanation:\n%s", code, stdout)
	}
}
