package initproc

import (
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"strata.dev/strata/internal/guest"
)

// inputEvent encodes one struct input_event as amd64 lays it out.
func inputEvent(typ, code uint16, value int32) []byte {
	b := make([]byte, inputEventSize)
	binary.LittleEndian.PutUint64(b[0:], 1700000000) // seconds
	binary.LittleEndian.PutUint64(b[8:], 5000)       // microseconds
	binary.LittleEndian.PutUint16(b[16:], typ)
	binary.LittleEndian.PutUint16(b[18:], code)
	binary.LittleEndian.PutUint32(b[20:], uint32(value))
	return b
}

func TestPowerKeyDown(t *testing.T) {
	syn := inputEvent(0, 0, 0)
	tests := []struct {
		name   string
		events [][]byte
		want   bool
	}{
		{"press", [][]byte{inputEvent(evKey, keyPower, 1), syn}, true},
		{"press after others", [][]byte{inputEvent(evKey, 30, 1), syn, inputEvent(evKey, keyPower, 1)}, true},
		{"release", [][]byte{inputEvent(evKey, keyPower, 0), syn}, false},
		{"repeat", [][]byte{inputEvent(evKey, keyPower, 2)}, false},
		{"other key", [][]byte{inputEvent(evKey, 30, 1)}, false},
		{"not a key", [][]byte{inputEvent(2, keyPower, 1)}, false},
		{"partial record", [][]byte{inputEvent(evKey, keyPower, 1)[:20]}, false},
	}
	for _, tt := range tests {
		var b []byte
		for _, e := range tt.events {
			b = append(b, e...)
		}
		if got := powerKeyDown(b); got != tt.want {
			t.Errorf("%s: powerKeyDown = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRootFiles(t *testing.T) {
	withNet := guest.Config{
		Hostname: "web-0",
		Net: &guest.NetConfig{
			Address: netip.MustParsePrefix("10.213.0.5/24"),
			DNS:     []netip.Addr{netip.MustParseAddr("10.213.0.1"), netip.MustParseAddr("fd00::1")},
		},
	}
	if got, want := string(resolvConf(withNet.Net)), "nameserver 10.213.0.1\nnameserver fd00::1\n"; got != want {
		t.Errorf("resolv.conf = %q, want %q", got, want)
	}
	onSegment := *withNet.Net
	onSegment.Search = []string{"back"}
	if got, want := string(resolvConf(&onSegment)), "nameserver 10.213.0.1\nnameserver fd00::1\nsearch back\noptions ndots:1\n"; got != want {
		t.Errorf("resolv.conf with a search domain = %q, want %q", got, want)
	}
	hosts := []struct {
		c    guest.Config
		last string
	}{
		{withNet, "10.213.0.5\tweb-0\n"},
		{guest.Config{Hostname: "solo"}, "127.0.1.1\tsolo\n"},
		{guest.Config{}, "::1\tlocalhost ip6-localhost ip6-loopback\n"},
	}
	for _, h := range hosts {
		got := string(hostsFile(h.c))
		if len(got) < len(h.last) || got[len(got)-len(h.last):] != h.last {
			t.Errorf("hosts for %q = %q, want it to end with %q", h.c.Hostname, got, h.last)
		}
	}
}

func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	if err := os.WriteFile(outside, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "resolv.conf")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	if err := replaceFile(link, []byte("nameserver 1.1.1.1\n")); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || !st.Mode().IsRegular() {
		t.Errorf("resolv.conf is not a regular file after replaceFile: %v %v", st, err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Errorf("replaceFile wrote through the symlink: %q", b)
	}
	if err := replaceFile(link, []byte("nameserver 2.2.2.2\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(link); string(b) != "nameserver 2.2.2.2\n" {
		t.Errorf("resolv.conf = %q", b)
	}
}

func TestLookupPort(t *testing.T) {
	dir := t.TempDir()
	for port, name := range map[string]string{"vport0p1": guest.AgentPort, "vport0p2": guest.ExitPort} {
		if err := os.MkdirAll(filepath.Join(dir, port), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, port, "name"), []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if dev, ok := lookupPort(dir, guest.ExitPort); !ok || dev != "/dev/vport0p2" {
		t.Errorf("lookupPort(exit) = %q, %v", dev, ok)
	}
	if _, ok := lookupPort(dir, "org.example.none"); ok {
		t.Error("found a port that is not there")
	}
	if _, ok := lookupPort(filepath.Join(dir, "missing"), guest.ExitPort); ok {
		t.Error("found a port in a missing directory")
	}
}

func TestIsEmptyDir(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(filepath.Join(full, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(empty, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want bool
	}{
		{empty, true},
		{filepath.Join(dir, "missing"), true},
		{full, false},
		{link, false}, // a symlinked /tmp is left alone
	}
	for _, tt := range tests {
		if got, err := isEmptyDir(tt.path); got != tt.want || err != nil {
			t.Errorf("isEmptyDir(%s) = %v, %v; want %v", tt.path, got, err, tt.want)
		}
	}
}

func TestLoadModulesSkipsMissing(t *testing.T) {
	// A directory without any of guest.Modules loads nothing and fails
	// nothing (a kernel with them all built in).
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "modules.order"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if errs := loadModules(dir, guest.Modules); len(errs) != 0 {
		t.Errorf("loadModules = %v", errs)
	}
	// No modules directory at all: strata's own kernel, built without modules.
	if errs := loadModules(filepath.Join(dir, "missing"), guest.Modules); len(errs) != 0 {
		t.Errorf("loadModules of a missing dir = %v, want none", errs)
	}
	// A path that cannot be a directory is still an error.
	if errs := loadModules(filepath.Join(dir, "modules.order", "6.1.0"), guest.Modules); len(errs) != 1 {
		t.Errorf("loadModules under a file = %v, want one error", errs)
	}
}
