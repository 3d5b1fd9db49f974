package initproc

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/testenv"
)

// One reaper per test process: two would take each other's children.
var (
	reaperOnce sync.Once
	sharedReap *reaper
)

func testReaper() *reaper {
	reaperOnce.Do(func() { sharedReap = newReaper() })
	return sharedReap
}

// testRoot lays out a small root filesystem: executables in /bin and
// /usr/local/bin, an absolute symlink (as busybox images have), a file
// without execute bits, and user databases.
func testRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]os.FileMode{
		"bin/busybox":        0o755,
		"usr/local/bin/tool": 0o755,
		"usr/bin/tool":       0o755,
		"bin/notexec":        0o644,
		"srv/app/run":        0o700,
	}
	for name, mode := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"bin/sh":      "/bin/busybox", // absolute: must resolve inside root
		"bin/ls":      "busybox",
		"bin/escape":  "../../../../../../bin/true",
		"bin/dangler": "/nowhere",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34:www:/var/www:/bin/false\n",
		"etc/group":  "root:x:0:\nstaff:x:50:www\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestLookPath(t *testing.T) {
	root := testRoot(t)
	tests := []struct {
		file, path, dir string
		want            string
		wantErr         error
	}{
		{"sh", "/usr/bin:/bin", "/", "/bin/sh", nil},
		{"ls", "/bin", "/", "/bin/ls", nil},
		{"tool", "/usr/local/bin:/usr/bin", "/", "/usr/local/bin/tool", nil},
		{"tool", "", "/", "/usr/local/bin/tool", nil}, // DefaultPath
		{"/bin/sh", "", "/", "/bin/sh", nil},
		{"./run", "", "/srv/app", "/srv/app/run", nil},
		{"app/run", "", "/srv", "/srv/app/run", nil},
		{"run", "app", "/srv", "/srv/app/run", nil}, // a relative PATH entry
		{"missing", "/bin:/usr/bin", "/", "", fs.ErrNotExist},
		{"notexec", "/bin", "/", "", fs.ErrPermission},
		{"/bin/notexec", "", "/", "", fs.ErrPermission},
		{"/etc", "", "/", "", fs.ErrPermission},
		{"escape", "/bin", "/", "", fs.ErrNotExist}, // .. stops at the root
		{"dangler", "/bin", "/", "", fs.ErrNotExist},
	}
	for _, tt := range tests {
		got, err := lookPath(root, tt.file, tt.path, tt.dir)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("lookPath(%q, %q, %q) = %q, %v; want %v", tt.file, tt.path, tt.dir, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("lookPath(%q, %q, %q) = %q, %v; want %q", tt.file, tt.path, tt.dir, got, err, tt.want)
		}
	}
}

func TestCredential(t *testing.T) {
	root := testRoot(t)
	tests := []struct {
		spec    string
		want    *syscall.Credential
		wantErr bool
	}{
		{"", nil, false},
		{"0", &syscall.Credential{Uid: 0, Gid: 0}, false},
		{"33", &syscall.Credential{Uid: 33, Gid: 34}, false}, // primary group from passwd
		{"www", &syscall.Credential{Uid: 33, Gid: 34}, false},
		{"1000", &syscall.Credential{Uid: 1000, Gid: 0}, false}, // not in passwd
		{"1000:1000", &syscall.Credential{Uid: 1000, Gid: 1000}, false},
		{"www:staff", &syscall.Credential{Uid: 33, Gid: 50}, false},
		{"nobody", nil, true},
		{"33:nogroup", nil, true},
		{"-1", nil, true},
	}
	for _, tt := range tests {
		got, err := credential(root, tt.spec)
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("credential(%q) = %+v, %v; want %+v (error %v)", tt.spec, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	tests := []struct {
		base, add, want []string
	}{
		{nil, nil, []string{"PATH=" + DefaultPath}},
		{[]string{"PATH=/bin", "A=1"}, nil, []string{"PATH=/bin", "A=1"}},
		{[]string{"PATH=/bin", "A=1"}, []string{"A=2", "B=3"}, []string{"PATH=/bin", "A=2", "B=3"}},
		{[]string{"A=1", "A=2"}, nil, []string{"A=2", "PATH=" + DefaultPath}},
	}
	for _, tt := range tests {
		if got := mergeEnv(tt.base, tt.add); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("mergeEnv(%q, %q) = %q, want %q", tt.base, tt.add, got, tt.want)
		}
	}
	if v := envValue([]string{"A=1", "PATH=/x:/y"}, "PATH"); v != "/x:/y" {
		t.Errorf("envValue = %q", v)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		ws   unix.WaitStatus
		want int
	}{
		{unix.WaitStatus(0), 0},
		{unix.WaitStatus(7 << 8), 7},
		{unix.WaitStatus(unix.SIGKILL), 137},
		{unix.WaitStatus(unix.SIGTERM), 143},
	}
	for _, tt := range tests {
		if got := exitCode(tt.ws); got != tt.want {
			t.Errorf("exitCode(%#x) = %d, want %d", uint32(tt.ws), got, tt.want)
		}
	}
}

// TestStart runs a real program chrooted into a busybox root, as the init
// does, and checks its environment, directory, user and exit code.
func TestStart(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "chroot needs root")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Skipf(t, "busybox is not installed (make host-setup installs busybox-static)")
	}
	root := testRoot(t)
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	r := testReaper()
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	c := command{
		args:  []string{"sh", "-c", `echo "$GREETING $(pwd) $(busybox id -u):$(busybox id -g)"; exit 3`},
		env:   mergeEnv([]string{"GREETING=hi"}, nil),
		dir:   "/srv",
		user:  "www",
		files: []*os.File{devNull, out, out},
	}
	p, err := r.start(root, c)
	if err != nil {
		t.Fatal(err)
	}
	var ws unix.WaitStatus
	select {
	case ws = <-p.done:
	case <-time.After(10 * time.Second):
		_ = unix.Kill(p.pid, unix.SIGKILL)
		t.Fatal("the program did not end")
	}
	if code := exitCode(ws); code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	got, _ := os.ReadFile(out.Name())
	if string(got) != "hi /srv 33:34\n" {
		t.Errorf("output %q, want %q", got, "hi /srv 33:34\n")
	}

	c.args = []string{"no-such-program"}
	if _, err := r.start(root, c); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("start of a missing program = %v, want not found", err)
	}
	c.args, c.dir = []string{"sh"}, "relative"
	if _, err := r.start(root, c); err == nil {
		t.Error("a relative working directory was accepted")
	}
}

func TestEntrypointEnv(t *testing.T) {
	root := testRoot(t)
	tests := []struct {
		c    guest.Config
		want []string
	}{
		{guest.Config{Hostname: "web-0"}, []string{"HOSTNAME=web-0", "HOME=/root", "PATH=" + DefaultPath}},
		{guest.Config{User: "www", Env: []string{"PATH=/bin"}}, []string{"HOME=/var/www", "PATH=/bin"}},
		{guest.Config{User: "1000"}, []string{"HOME=/", "PATH=" + DefaultPath}},
		{guest.Config{Hostname: "h", Env: []string{"HOME=/data", "HOSTNAME=x"}}, []string{"HOME=/data", "HOSTNAME=x", "PATH=" + DefaultPath}},
	}
	for _, tt := range tests {
		if got := entrypointEnv(root, tt.c); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("entrypointEnv(%+v) = %q, want %q", tt.c, got, tt.want)
		}
	}
}
