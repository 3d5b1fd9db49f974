package initproc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/testenv"
)

// portPair is a socket pair standing in for the agent port: the guest's end
// as the init holds it (a pollable *os.File) and the host's as a net.Conn.
func portPair(t *testing.T) (guestEnd *os.File, hostEnd net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	guestEnd = os.NewFile(uintptr(fds[0]), "vport0p1")
	hf := os.NewFile(uintptr(fds[1]), "host")
	hostEnd, err = net.FileConn(hf)
	_ = hf.Close()
	if err != nil {
		t.Fatal(err)
	}
	return guestEnd, hostEnd
}

// busyboxRoot is testRoot with a real busybox, or a skip when chroot or
// busybox are out of reach.
func busyboxRoot(t *testing.T) string {
	t.Helper()
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
	// Busybox's sh gives background jobs /dev/null as their stdin.
	if err := os.Mkdir(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"cat", "echo", "sleep", "pwd"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// serveAgent runs the agent on the guest end until the test ends.
func serveAgent(t *testing.T, root string, guestEnd *os.File) {
	t.Helper()
	a := &agent{
		log:    &console{w: io.Discard},
		reaper: testReaper(),
		root:   root,
		base:   command{env: mergeEnv([]string{"GREETING=hello"}, nil), dir: "/"},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.serveFile(guestEnd)
	}()
	t.Cleanup(func() {
		_ = guestEnd.Close()
		<-done
	})
}

// TestAgentServesExecs runs the guest agent against the host's client
// over a socket pair, with real programs in a chroot.
func TestAgentServesExecs(t *testing.T) {
	root := busyboxRoot(t)
	guestEnd, hostEnd := portPair(t)
	serveAgent(t, root, guestEnd)
	// Junk before the HELLO is discarded.
	if _, err := io.WriteString(hostEnd, "leftover bytes\n\x00\x01"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := guest.NewAgentClient(ctx, hostEnd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var stdout, stderr bytes.Buffer
	code, err := c.Exec(ctx, []string{"sh", "-c", `echo "$GREETING $EXTRA"; cat; echo err >&2; exit 4`},
		[]string{"EXTRA=world"}, strings.NewReader("from stdin\n"), &stdout, &stderr)
	if err != nil || code != 4 || stdout.String() != "hello world\nfrom stdin\n" || stderr.String() != "err\n" {
		t.Errorf("exec = %d, %v, stdout %q, stderr %q", code, err, stdout.String(), stderr.String())
	}

	stdout.Reset()
	code, err = c.Run(ctx, guest.ExecRequest{Args: []string{"pwd"}, WorkingDir: "/srv/app"}, nil, &stdout, nil)
	if err != nil || code != 0 || stdout.String() != "/srv/app\n" {
		t.Errorf("pwd in /srv/app = %d, %v, %q", code, err, stdout.String())
	}

	code, err = c.Exec(ctx, []string{"missing"}, nil, nil, nil, nil)
	var se *guest.StartError
	if code != guest.ExitNotFound || !errors.As(err, &se) {
		t.Errorf("exec of a missing program = %d, %v", code, err)
	}

	// A program left running in the background, holding the output pipes,
	// does not keep the exec from ending (after outputLinger).
	stdout.Reset()
	code, err = c.Exec(ctx, []string{"sh", "-c", "sleep 60 & echo $!"}, nil, nil, &stdout, nil)
	if err != nil || code != 0 {
		t.Fatalf("exec with a background child = %d, %v, %q", code, err, stdout.String())
	}
	pid, err := strconv.Atoi(strings.TrimSpace(stdout.String()))
	if err != nil {
		t.Fatalf("background child's pid %q: %v", stdout.String(), err)
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Errorf("the background child was not running when the exec ended: %v", err)
	}
}

// TestAgentNewHostWithoutEOF sends a second HELLO in the middle of a
// session, as a host that reconnects before the guest saw the first one
// leave would: the session fails and the guest answers the new HELLO.
func TestAgentNewHostWithoutEOF(t *testing.T) {
	guestEnd, hostEnd := portPair(t)
	serveAgent(t, t.TempDir(), guestEnd)
	if err := hostEnd.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(hostEnd)
	waitOK := func(nonce string) {
		t.Helper()
		for {
			got, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("no OK for HELLO %s: %v", nonce, err)
			}
			if strings.HasSuffix(got, guest.OKLine(nonce)) {
				return
			}
		}
	}
	if _, err := io.WriteString(hostEnd, guest.HelloLine("first")); err != nil {
		t.Fatal(err)
	}
	waitOK("first")
	// The first session runs; the next HELLO arrives inside it, in two
	// parts, the first shorter than a yamux header.
	line := guest.HelloLine("second")
	for _, part := range []string{line[:10], line[10:]} {
		if _, err := io.WriteString(hostEnd, part); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitOK("second")
}

func TestHelloStart(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", -1},
		{"yamux bytes", -1},
		{"xx" + guest.HelloPrefix + "abc\n", 2},
		{"xxSTRATA-AG", 2},
		{"xxS", 2},
		{guest.HelloPrefix + "a\n" + guest.HelloPrefix + "b\n", len(guest.HelloPrefix) + 2},
	}
	for _, tt := range tests {
		if got := helloStart([]byte(tt.in)); got != tt.want {
			t.Errorf("helloStart(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
