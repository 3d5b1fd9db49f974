package dns

import (
	"context"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/internal/testenv"
)

// busyboxRoot makes a directory to chroot into: a static busybox and the
// resolv.conf that an instance of segment gets.
func busyboxRoot(t *testing.T, gateway, segment string) string {
	t.Helper()
	bin, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Skipf(t, "needs a static busybox (apt-get install busybox-static)")
	}
	for _, tool := range []string{"nsenter", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "needs %s (util-linux, coreutils)", tool)
		}
	}
	root := t.TempDir()
	for _, dir := range []string{"bin", "etc"} {
		if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, bin, filepath.Join(root, "bin", "busybox"))
	conf := ResolvConf(netip.MustParseAddr(gateway), segment)
	if err := os.WriteFile(filepath.Join(root, "etc", "resolv.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	// The C library's resolver (ping, wget) looks at these as well.
	if err := os.WriteFile(filepath.Join(root, "etc", "hosts"), []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "nsswitch.conf"), []byte("hosts: files dns\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// busybox runs a busybox applet in the test namespace, chrooted in root,
// and returns its output and exit error.
func (n *testNet) busybox(root string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	argv := append([]string{"--net=/run/netns/" + n.name, "--", "chroot", root, "/bin/busybox"}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", argv...).CombinedOutput()
	return string(out), err
}

// TestBusybox: real programs resolve through the server, with the
// resolv.conf that ResolvConf writes.
func TestBusybox(t *testing.T) {
	n, _ := twoSegments(t, nil)
	root := busyboxRoot(t, frontGW, "front")

	tests := []struct {
		name    string
		args    []string
		want    []string // in the output
		wantErr bool
	}{
		{"nslookup with the server named", []string{"nslookup", "web", frontGW},
			[]string{"Address: 10.213.1.10", "Address: 10.213.1.11"}, false},
		{"nslookup through resolv.conf", []string{"nslookup", "web-0"},
			[]string{"Address: 10.213.1.10"}, false},
		{"nslookup of another segment", []string{"nslookup", "db.back"},
			[]string{"Address: 10.213.2.10"}, false},
		{"nslookup, upper case", []string{"nslookup", "DB-0.Back"},
			[]string{"Address: 10.213.2.10"}, false},
		{"nslookup of an unknown name", []string{"nslookup", "nope"},
			[]string{"NXDOMAIN"}, true},
		// ping resolves with the C library's getaddrinfo; nothing answers
		// the ping itself, but its first line shows the address.
		{"C library resolver", []string{"ping", "-c", "1", "-W", "1", "web-1"},
			[]string{"PING web-1 (10.213.1.11)"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := n.busybox(root, tt.args...)
			t.Logf("busybox %s:\n%s", strings.Join(tt.args, " "), out)
			if (err != nil) != tt.wantErr {
				t.Errorf("busybox %s: error %v, want error %v\n%s", strings.Join(tt.args, " "), err, tt.wantErr, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("busybox %s: output lacks %q:\n%s", strings.Join(tt.args, " "), w, out)
				}
			}
		})
	}
}
