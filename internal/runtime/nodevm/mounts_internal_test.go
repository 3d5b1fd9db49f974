package nodevm

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/testenv"
)

// TestUnmountTree: an instance's binds in a share go, the data in the
// host directories stays; a removal never reaches into a directory still
// mounted.
func TestUnmountTree(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: bind mounts need root")
	}
	dir := t.TempDir()
	vol, conf, share := filepath.Join(dir, "vol"), filepath.Join(dir, "conf"), filepath.Join(dir, "share", "web-0")
	for _, d := range []string{vol, conf, share} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(vol, "orders.db")
	if err := os.WriteFile(data, []byte("order-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, m := range []string{filepath.Join(share, "0"), filepath.Join(share, "1"), filepath.Join(share, "2")} {
			_ = unix.Unmount(m, unix.MNT_DETACH)
		}
	})
	if err := bindMount(vol, filepath.Join(share, "0"), false); err != nil {
		t.Fatal(err)
	}
	if err := bindMount(conf, filepath.Join(share, "1"), true); err != nil {
		t.Fatal(err)
	}
	if err := bindMount(data, filepath.Join(share, "2"), true); err != nil { // a file
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(share, "1", "x"), nil, 0o600); err == nil {
		t.Error("a write into a read-only bind succeeded")
	}
	if b, err := os.ReadFile(filepath.Join(share, "2")); err != nil || string(b) != "order-1\n" {
		t.Errorf("the file's bind reads %q, %v", b, err)
	}

	// A removal of the tree refuses to cross into a mount.
	if err := removeTree(share); err == nil {
		t.Error("removeTree went through mounted binds")
	}
	if _, err := os.Stat(data); err != nil {
		t.Fatalf("a removal reached into the volume: %v", err)
	}

	if err := unmountTree(share); err != nil {
		t.Fatal(err)
	}
	if m, err := mountPoints(filepath.Join(dir, "share")); err != nil || len(m) > 0 {
		t.Errorf("still mounted: %q, %v", m, err)
	}
	if _, err := os.Lstat(share); !os.IsNotExist(err) {
		t.Errorf("%s is left: %v", share, err)
	}
	if b, err := os.ReadFile(data); err != nil || string(b) != "order-1\n" {
		t.Errorf("the volume's data after unmountTree: %q, %v", b, err)
	}
	if err := unmountTree(share); err != nil {
		t.Errorf("unmountTree of what is gone: %v", err)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/srv/a`:            "/srv/a",
		`/srv/my\040volume`: "/srv/my volume",
		`/srv/tab\011x`:     "/srv/tab\tx",
		`/srv/back\134s`:    `/srv/back\s`,
		`/srv/short\04`:     `/srv/short\04`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
