package initproc

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/testenv"
)

// TestWriteLayer changes a real overlayfs as a container changes its root
// filesystem (a new file, a changed one, a removed one, a directory
// removed and made again, a hard link, a symlink, a socket) and reads the
// layer written from its upper directory: what was added or changed, a
// whiteout for what was removed, an opaque marker for the directory that
// hides the image's.
func TestWriteLayer(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "mounting an overlayfs needs root")
	}
	dir := t.TempDir()
	lower, upper, work, merged := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	image := map[string]string{"etc/motd": "welcome\n", "etc/hosts": "127.0.0.1 localhost\n", "var/cache/old/a": "a", "var/cache/old/b": "b"}
	for name, data := range image {
		p := filepath.Join(lower, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		testenv.Skipf(t, "no overlayfs here: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })

	in := func(name string) string { return filepath.Join(merged, name) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(in("etc/app.conf"), []byte("port=8080\n"), 0o640))
	must(os.WriteFile(in("etc/motd"), []byte("changed\n"), 0o644))
	must(os.Remove(in("etc/hosts")))
	must(os.RemoveAll(in("var/cache/old")))
	must(os.MkdirAll(in("var/cache/old"), 0o755))
	must(os.WriteFile(in("var/cache/old/c"), []byte("c"), 0o600))
	must(os.Link(in("etc/app.conf"), in("etc/app.conf.bak")))
	must(os.Symlink("app.conf", in("etc/current.conf")))
	must(os.Chown(in("etc/app.conf"), 1000, 1001))
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	must(err)
	defer unix.Close(sock)
	must(unix.Bind(sock, &unix.SockaddrUnix{Name: in("etc/control.sock")}))

	var buf bytes.Buffer
	if err := writeLayer(&buf, upper); err != nil {
		t.Fatalf("writeLayer: %v", err)
	}
	got := map[string]*tar.Header{}
	content := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the layer is no tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name], content[h.Name] = h, string(b)
	}
	for name, want := range map[string]string{
		"etc/app.conf": "port=8080\n", "etc/motd": "changed\n", "var/cache/old/c": "c",
		"etc/.wh.hosts": "", "var/cache/old/.wh..wh..opq": "",
	} {
		if h, ok := got[name]; !ok || h.Typeflag != tar.TypeReg || content[name] != want {
			t.Errorf("layer entry %s: %+v, content %q; want a file holding %q", name, h, content[name], want)
		}
	}
	if h := got["etc/app.conf"]; h != nil && (h.Uid != 1000 || h.Gid != 1001 || h.Mode&0o777 != 0o640 || h.Uname != "") {
		t.Errorf("etc/app.conf: owner %d:%d (%q), mode %o; want 1000:1001 by number, 0640", h.Uid, h.Gid, h.Uname, h.Mode)
	}
	if h := got["etc/app.conf.bak"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "etc/app.conf" {
		t.Errorf("etc/app.conf.bak: %+v, want a hard link to etc/app.conf", h)
	}
	if h := got["etc/current.conf"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "app.conf" {
		t.Errorf("etc/current.conf: %+v, want a symlink to app.conf", h)
	}
	for _, name := range []string{"etc/", "var/", "var/cache/", "var/cache/old/"} {
		if h := got[name]; h == nil || h.Typeflag != tar.TypeDir {
			t.Errorf("%s: %+v, want a directory entry", name, h)
		}
	}
	for name := range got {
		if strings.Contains(name, "control.sock") || name == "etc/hosts" || strings.HasPrefix(name, "var/cache/old/a") {
			t.Errorf("layer has %s: a socket, or a removed file as itself", name)
		}
	}
	if _, ok := got["var/cache/old/.wh.a"]; ok {
		t.Error("the opaque directory lists a whiteout of its own for a file the marker hides already")
	}
}

// TestAgentNodeRootfs: the host's client reads a container's layer through
// the agent, as an exec's output ended by exit code 0; an unknown container,
// and a sandbox that runsc cannot write or that does not run, are errors.
func TestAgentNodeRootfs(t *testing.T) {
	guestEnd, hostEnd := portPair(t)
	a := &agent{log: &console{w: io.Discard}, reaper: testReaper(), root: t.TempDir()}
	a.node = newNode(a.log, a.reaper)
	ctrDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ctrDir, "upper", "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Larger than a frame's payload, so that it comes in several.
	big := bytes.Repeat([]byte("0123456789abcdef"), (guest.MaxFramePayload+4096)/16)
	if err := os.WriteFile(filepath.Join(ctrDir, "upper", "srv", "data.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	a.node.containers["web-0"] = &container{id: "web-0", dir: ctrDir, state: guest.StateRunning, done: make(chan struct{})}
	a.node.containers["sbx-0"] = &container{id: "sbx-0", dir: ctrDir, state: guest.StateRunning, done: make(chan struct{}),
		spec: guest.ContainerSpec{Runtime: guest.RuntimeRunsc}}
	a.node.containers["sbx-1"] = &container{id: "sbx-1", dir: ctrDir, state: guest.StateCreated, done: make(chan struct{}),
		spec: guest.ContainerSpec{Runtime: guest.RuntimeRunsc}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.serveFile(guestEnd)
	}()
	t.Cleanup(func() {
		_ = guestEnd.Close()
		<-done
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := guest.NewAgentClient(ctx, hostEnd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var layer bytes.Buffer
	if err := c.NodeRootfs(ctx, "web-0", &layer); err != nil {
		t.Fatalf("NodeRootfs: %v", err)
	}
	tr := tar.NewReader(&layer)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the layer is no tar: %v", err)
		}
		names = append(names, h.Name)
		if h.Name == "srv/data.bin" {
			if b, _ := io.ReadAll(tr); !bytes.Equal(b, big) {
				t.Errorf("srv/data.bin: %d bytes, want the %d written", len(b), len(big))
			}
		}
	}
	if strings.Join(names, " ") != "srv/ srv/data.bin" {
		t.Errorf("layer entries %q, want srv/ and srv/data.bin", names)
	}
	// A sandbox's layer is runsc's to write (the guest's runsc, not here),
	// and only while the sandbox runs.
	for id, want := range map[string]string{"nobody": `no container "nobody"`, "sbx-0": "sbx-0: layer of its changes: ", "sbx-1": "it is created; runsc writes the layer of a running sandbox"} {
		if err := c.NodeRootfs(ctx, id, io.Discard); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NodeRootfs(%s) = %v, want an error saying %q", id, err, want)
		}
	}
}

// TestAgentNodeLayer: a layer sent by the host's client lands in a created
// container's root filesystem, its whiteouts removing the image's files; a
// started container, and an entry that leads out of the root filesystem, are
// refused.
func TestAgentNodeLayer(t *testing.T) {
	guestEnd, hostEnd := portPair(t)
	a := &agent{log: &console{w: io.Discard}, reaper: testReaper(), root: t.TempDir()}
	a.node = newNode(a.log, a.reaper)
	ctrDir := t.TempDir()
	rootfs := filepath.Join(ctrDir, "rootfs")
	for name, data := range map[string]string{"bin/false": "image's false", "etc/motd": "welcome\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(rootfs, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a.node.containers["new-0"] = &container{id: "new-0", dir: ctrDir, state: guest.StateCreated, done: make(chan struct{})}
	a.node.containers["old-0"] = &container{id: "old-0", dir: ctrDir, state: guest.StateRunning, done: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.serveFile(guestEnd)
	}()
	t.Cleanup(func() {
		_ = guestEnd.Close()
		<-done
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := guest.NewAgentClient(ctx, hostEnd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	layer := func(entries ...*tar.Header) *bytes.Buffer {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range entries {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Size > 0 {
				_, _ = tw.Write([]byte(strings.Repeat("k", int(h.Size))))
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return &buf
	}
	l := layer(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "etc/state", Typeflag: tar.TypeReg, Mode: 0o600, Size: 4, Uid: 1000, Gid: 1000},
		&tar.Header{Name: "bin/.wh.false", Typeflag: tar.TypeReg, Mode: 0o600})
	if err := c.NodeLayer(ctx, "new-0", l); err != nil {
		t.Fatalf("NodeLayer: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "etc/state")); err != nil || string(b) != "kkkk" {
		t.Errorf("etc/state after the layer: %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "etc/state")); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && (!ok || st.Uid != 1000) {
			t.Errorf("etc/state belongs to %+v, want uid 1000 from the layer", fi.Sys())
		}
	}
	if _, err := os.Stat(filepath.Join(rootfs, "bin/false")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bin/false after its whiteout: %v, want it gone", err)
	}
	if b, _ := os.ReadFile(filepath.Join(rootfs, "etc/motd")); string(b) != "welcome\n" {
		t.Errorf("etc/motd, which the layer leaves alone: %q", b)
	}

	for id, tc := range map[string]struct {
		layer *bytes.Buffer
		want  string
	}{
		"old-0":  {layer(&tar.Header{Name: "x", Typeflag: tar.TypeReg}), "is running; a layer goes into a created container"},
		"new-0":  {layer(&tar.Header{Name: "../escape", Typeflag: tar.TypeReg}), "apply the root filesystem layer"},
		"nobody": {layer(), `no container "nobody"`},
	} {
		if err := c.NodeLayer(ctx, id, tc.layer); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NodeLayer(%s) = %v, want an error saying %q", id, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(ctrDir), "escape")); err == nil {
		t.Error("an entry named ../escape was written outside the root filesystem")
	}
}
